import type { TokenRevocations } from '@puente/runtime';
import type { Db, Filter } from 'mongodb';
import {
  channelAllowed,
  Channels,
  Collections,
  ErrorCodes,
  SEARCH_MAX_RESULTS,
  SearchQuery,
  type SearchResult,
} from '@puente/contracts';
import { sendJson, type RouteSpec } from '@puente/runtime';
import { readerClaims } from '../httpToken.js';
import { refused } from '../refused.js';
import { foldAccents, numberPattern, searchPattern } from './searchPattern.js';

export interface SearchRouteOptions {
  db: Db;
  secrets: readonly string[];
  /** Revoked tokens are refused. */
  revocations: TokenRevocations;
}

type FoundDoc = SearchResult['conversations'][number];

const live = { _deleted: { $ne: true } };

/**
 * `GET /api/search?session=<session>&q=<text>`: a session's conversations (by name, or by the digits
 * of their chat JID or phone) and contacts (by name, pushed name, phone or JID: also those without a
 * conversation, so one can be started), case- and accent-insensitive. The token must allow the
 * session's conversations channel for conversations and its contacts channel for contacts; a kind it
 * may not read is left out, and a token that may read neither is refused.
 */
export function searchRoute(options: SearchRouteOptions): RouteSpec {
  const conversations = options.db.collection<FoundDoc>(Collections.waConversations);
  const contacts = options.db.collection<FoundDoc>(Collections.waContacts);
  return {
    method: 'GET',
    path: '/api/search',
    handler: async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://realtime');
      const claims = await readerClaims(req, url, options.secrets, options.revocations, { fromUrl: false });
      const query = SearchQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!query.success) {
        const issue = query.error.issues[0]!;
        throw refused(ErrorCodes.badRequest, `${issue.path.join('.') || 'query'}: ${issue.message}`);
      }
      const { session, q } = query.data;
      // Only accents (combining marks) would fold to nothing and match everything.
      if (foldAccents(q) === '') throw refused(ErrorCodes.badRequest, 'q: nothing to search for');
      const may = (channel: string) => claims.channels.some((pattern) => channelAllowed(pattern, channel));
      const readsConversations = may(Channels.whatsappConversations(session));
      const readsContacts = may(Channels.whatsappContacts(session));
      if (!readsConversations && !readsContacts)
        throw refused(ErrorCodes.forbidden, "the token allows neither this session's conversations nor its contacts", {
          session,
        });

      const text = { $regex: searchPattern(q), $options: 'i' };
      const digits = numberPattern(q);
      const number = digits === undefined ? [] : [{ $regex: digits }];
      const [chats, people] = await Promise.all([
        readsConversations
          ? conversations
              .find({
                session,
                ...live,
                $or: [{ name: text }, ...number.flatMap((n) => [{ chatId: n }, { phone: n }])],
              } as Filter<FoundDoc>)
              .sort({ updatedAt: -1, _id: 1 })
              .limit(SEARCH_MAX_RESULTS + 1)
              .toArray()
          : [],
        readsContacts
          ? contacts
              .find({
                session,
                ...live,
                $or: [{ name: text }, { pushName: text }, { jid: text }, ...number.map((n) => ({ phone: n }))],
              } as Filter<FoundDoc>)
              .sort({ name: 1, _id: 1 })
              // Room for the contacts dropped below because their conversation was found.
              .limit(2 * SEARCH_MAX_RESULTS + 1)
              .toArray()
          : [],
      ]);
      const chatIds = new Set(chats.map((c) => c.chatId as unknown));
      const others = people.filter((c) => !chatIds.has(c.jid));
      // Both kinds get room when both matched plenty: half each, the rest to whichever has more.
      const half = SEARCH_MAX_RESULTS / 2;
      const chatCount = Math.min(chats.length, Math.max(half, SEARCH_MAX_RESULTS - others.length));
      const contactCount = Math.min(others.length, SEARCH_MAX_RESULTS - chatCount);
      const result: SearchResult = {
        session,
        q,
        conversations: chats.slice(0, chatCount),
        contacts: others.slice(0, contactCount),
        truncated: chats.length + others.length > chatCount + contactCount,
      };
      sendJson(res, 200, result, { 'cache-control': 'no-store' });
    },
  };
}
