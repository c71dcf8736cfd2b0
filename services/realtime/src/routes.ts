import { Collections, decodeToken } from '@puente/contracts';

/** Where a channel's documents live: a collection and the filter that selects the channel's documents. */
export interface ChannelRoute {
  collection: string;
  filter: Record<string, unknown>;
}

/**
 * The read model behind a channel (DESIGN.md "Realtime"; tokens inside are encoded as in subjects),
 * or undefined for a channel Puente does not serve.
 */
export function routeOf(channel: string): ChannelRoute | undefined {
  const parts = channel.split('.');
  try {
    const [a, b, c, d] = parts;
    switch (parts.length) {
      case 1:
        return undefined;
      case 2:
        if (a === 'kissflow') return { collection: Collections.kissflowRecords, filter: { dataset: decodeToken(b!) } };
        if (a === 'whatsapp' && b === 'sessions') return { collection: Collections.waSessions, filter: {} };
        if (a === 'bitrix' && b === 'links') return { collection: Collections.bitrixLinks, filter: {} };
        if (a === 'commands') return { collection: Collections.commands, filter: { session: decodeToken(b!) } };
        return undefined;
      case 3:
        if (a === 'whatsapp' && b === 'conversations') return { collection: Collections.waConversations, filter: { session: decodeToken(c!) } };
        if (a === 'whatsapp' && b === 'contacts') return { collection: Collections.waContacts, filter: { session: decodeToken(c!) } };
        return undefined;
      case 4:
        if (a === 'whatsapp' && b === 'messages') return { collection: Collections.waMessages, filter: { session: decodeToken(c!), chatId: decodeToken(d!) } };
        return undefined;
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}
