import { z } from 'zod';

/** The longest `q` a search takes (a longer one is a bad request, not trimmed). */
export const SEARCH_MAX_QUERY_LENGTH = 100;

/** The most matches one search answers, conversations and contacts together. */
export const SEARCH_MAX_RESULTS = 50;

/** `GET /api/search` on realtime: its query string. */
export const SearchQuery = z.object({
  /** The WhatsApp session searched (its name, not encoded). */
  session: z.string().min(1).max(256),
  /** Text or digits to find; case and accents do not matter, regular-expression characters match themselves. */
  q: z.string().trim().min(1).max(SEARCH_MAX_QUERY_LENGTH),
});
export type SearchQuery = z.infer<typeof SearchQuery>;

const Doc = z.object({ _id: z.string() }).catchall(z.unknown());

/** What `GET /api/search` answers: read-model documents as the channels serve them. */
export const SearchResult = z.object({
  session: z.string(),
  q: z.string(),
  /** `wa_conversations` documents whose name or number matches, the most recently active first. */
  conversations: z.array(Doc),
  /** `wa_contacts` documents whose name, pushed name, phone or JID matches and that have no conversation in `conversations`, by name. */
  contacts: z.array(Doc),
  /** More matched than `SEARCH_MAX_RESULTS`: the asker should type more. */
  truncated: z.boolean(),
});
export type SearchResult = z.infer<typeof SearchResult>;
