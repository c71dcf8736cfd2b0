import { ChannelField, decodeToken, ReadModelRoutes, type ChannelRouteDescriptor } from '@puente/contracts';

/** Where a channel's documents live: a collection and the filter that selects the channel's documents. */
export interface ChannelRoute {
  collection: string;
  filter: Record<string, unknown>;
  /** The time field of channels that serve newest-first pages (`timeField` of the route). */
  timeField?: string;
  /** Fields only the session's senders see (`sendersOnly` of the route). */
  sendersOnly?: ChannelRouteDescriptor['sendersOnly'];
}

/**
 * The read model behind a channel (DESIGN.md "Realtime"; tokens inside are encoded as in subjects):
 * the first route whose pattern it matches, filtered on what its `<field>` tokens decode to; undefined
 * for a channel no route serves, or one whose tokens do not decode. `routes` defaults to every read
 * model's (`ReadModelRoutes` in libs/contracts).
 */
export function routeOf(
  channel: string,
  routes: readonly ChannelRouteDescriptor[] = ReadModelRoutes,
): ChannelRoute | undefined {
  const have = channel.split('.');
  for (const route of routes) {
    const want = route.channel.split('.');
    if (want.length !== have.length) continue;
    const filter: Record<string, unknown> = {};
    let matches = true;
    for (let i = 0; i < want.length && matches; i++) {
      const field = ChannelField.exec(want[i]!)?.[1];
      if (field === undefined) matches = want[i] === have[i];
      else {
        try {
          filter[field] = decodeToken(have[i]!);
        } catch {
          matches = false;
        }
      }
    }
    if (matches)
      return {
        collection: route.collection,
        filter,
        ...(route.timeField !== undefined ? { timeField: route.timeField } : {}),
        ...(route.sendersOnly !== undefined ? { sendersOnly: route.sendersOnly } : {}),
      };
  }
  return undefined;
}

/** A channel router over a list of read-model routes. */
export function router(
  routes: readonly ChannelRouteDescriptor[] = ReadModelRoutes,
): (channel: string) => ChannelRoute | undefined {
  return (channel) => routeOf(channel, routes);
}
