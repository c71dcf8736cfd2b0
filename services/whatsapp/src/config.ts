import { z } from 'zod';
import { url } from '@puente/runtime';

/** The service's environment: Inbox Hub, Evolution API, WAHA and the Cloud API, sending limits, consumers and projection settings (docs/whatsapp.md). */
export const Config = z.object({
  INBOXHUB_API_URL: url(['https', 'http']).optional(),
  INBOXHUB_API_KEY: z.string().optional(),
  INBOXHUB_EMAIL: z.string().optional(),
  INBOXHUB_PASSWORD: z.string().optional(),
  /*
   * Paths of the calls Inbox Hub's users never printed (docs/providers/inboxhub.md): templates on
   * INBOXHUB_API_URL with `{session}` (the string session id) and `{chat}` (the chat JID).
   */
  INBOXHUB_LOGIN_PATH: z.string().startsWith('/').default('/api/auth/login'),
  INBOXHUB_SESSIONS_PATH: z.string().startsWith('/').default('/api/sessions'),
  INBOXHUB_CONTACTS_PATH: z.string().startsWith('/').default('/api/sessions/{session}/contacts'),
  INBOXHUB_CHATS_PATH: z.string().startsWith('/').default('/api/sessions/{session}/chats'),
  INBOXHUB_MESSAGES_PATH: z.string().startsWith('/').default('/api/sessions/{session}/chats/{chat}/messages'),
  INBOXHUB_SEND_PATH: z.string().startsWith('/').default('/api/sessions/{session}/messages/send'),
  INBOXHUB_READ_PATH: z.string().startsWith('/').default('/api/sessions/{session}/chats/{chat}/read'),
  /** Printed for `POST` (create); `GET` on it (listing, to stay idempotent) was not printed. */
  INBOXHUB_ACCOUNT_WEBHOOKS_PATH: z.string().startsWith('/').default('/api/webhooks'),
  INBOXHUB_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  INBOXHUB_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  INBOXHUB_SYNC_CHATS: z.coerce.number().int().min(0).max(10_000).default(20),
  INBOXHUB_SYNC_MESSAGES: z.coerce.number().int().min(0).max(10_000).default(50),
  INBOXHUB_SYNC_PAGE_SIZE: z.coerce.number().int().min(1).max(100).default(50),
  /** A running sync whose worker has not reported for this long is resumed by another. */
  INBOXHUB_SYNC_STALE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** Evolution API v2's base URL and key (header `apikey`): sending and mark-read for `evolution` sessions. */
  EVOLUTION_API_URL: url(['https', 'http']).optional(),
  EVOLUTION_API_KEY: z.string().optional(),
  /** WAHA's base URL and key (header `X-Api-Key`): sending and mark-read for `waha` sessions. */
  WAHA_API_URL: url(['https', 'http']).optional(),
  WAHA_API_KEY: z.string().optional(),
  /** Largest media item kept or sent (bytes; WhatsApp's own largest, a document, is 100 MB on the Cloud API). */
  MEDIA_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(2 * 1024 ** 3)
    .default(100 * 1024 ** 2),
  /** Total bytes the media store may hold (in MONGO_URL's database); media past it is marked `BUDGET`, not kept. */
  MEDIA_BUDGET_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(20 * 1024 ** 3),
  /** How long fetching a send's media URL may take, answer and body (the send fails `MEDIA_UNAVAILABLE` past it). */
  /**
   * `deny`: a send's media URL (and every redirect) must be on a public network, not loopback, private,
   * link-local or the cloud metadata address; `allow` lifts it (a file server inside your network).
   */
  MEDIA_FETCH_PRIVATE_NETWORKS: z.enum(['allow', 'deny']).default('deny'),
  MEDIA_FETCH_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  /** Media downloads (incoming media kept in the store) running at once per instance. */
  MEDIA_DOWNLOAD_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** How long one download (or one provider call of it) may take before it counts as a transient failure. */
  MEDIA_DOWNLOAD_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(300_000),
  /** How long a download that keeps failing transiently (timeouts, 5xx, 429) is retried before the media is `UNREACHABLE`. */
  MEDIA_RETRY_FOR_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(7 * 24 * 3_600_000)
    .default(3_600_000),
  /**
   * Inbox Hub's download of a message's media when its webhook URL has expired (not printed by Inbox Hub's
   * users: Puente's choice, docs/providers/inboxhub.md); `{session}`, `{chat}`, `{message}` filled in.
   */
  INBOXHUB_MEDIA_PATH: z.string().startsWith('/').default('/api/sessions/{session}/messages/{message}/media'),
  /**
   * WAHA's lookup of one message with its media downloaded again (a fresh `media.url`), as newer WAHA
   * releases serve it; `{session}`, `{chat}` (WAHA's `@c.us` form) and `{message}` (the serialized id) filled in.
   */
  WAHA_MESSAGE_PATH: z
    .string()
    .startsWith('/')
    .default('/api/{session}/chats/{chat}/messages/{message}?downloadMedia=true'),
  WHATSAPP_ACCESS_TOKEN: z.string().optional(),
  WHATSAPP_GRAPH_URL: url(['https', 'http']).default('https://graph.facebook.com/v21.0'),
  /** The WhatsApp Business Account of every Cloud API session not named in WHATSAPP_WABA_IDS (its templates are read from it). */
  WHATSAPP_WABA_ID: z.string().regex(/^\d+$/, 'a WABA id is digits').optional(),
  /**
   * Comma-separated `<phone-number-id>:<waba-id>`: each Cloud API session's WhatsApp Business Account
   * (the webhook's `entry[].id`), whose message templates the service reads on start and on "sync now".
   */
  WHATSAPP_WABA_IDS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const pairs = (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((pair) => pair.split(':').map((s) => s.trim()));
      for (const pair of pairs)
        if (pair.length !== 2 || !pair[0] || !/^\d+$/.test(pair[1]!)) {
          ctx.addIssue({ code: 'custom', message: `not <phone-number-id>:<waba-id>: ${pair.join(':')}` });
          return z.NEVER;
        }
      return pairs.map(([session, waba]) => [session!, waba!] as const);
    }),
  WHATSAPP_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  /** Sends per second per session (the Cloud API allows 80 per number by default; Baileys numbers are safer slower). */
  WHATSAPP_SEND_RATE: z.coerce.number().positive().max(1_000).default(10),
  /** Sends of one session that may wait for the rate limit; more go back to the stream and come later. */
  WHATSAPP_SEND_QUEUE: z.coerce.number().int().min(1).max(100_000).default(200),
  /**
   * Comma-separated sessions this instance serves (default: all). Its consumers then read only those
   * sessions' subjects, under durable names of their own: one way to split sessions across deployments.
   */
  /**
   * How long JetStream waits before redelivering what a consumer took and did not finish (a running
   * handler keeps its messages alive): what an instance that died leaves behind waits this long.
   */
  WHATSAPP_ACK_WAIT_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
  /** How often sends whose result was lost are checked against the provider's reports (see docs/whatsapp.md). */
  WHATSAPP_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  /**
   * `exclusive`: one instance applies each session's events (the default: one replica, or sessions split
   * with WHATSAPP_SESSIONS). `shared`: several replicas pull the same consumer; on FerretDB every replace
   * then claims its revision first (MongoDB needs nothing: its filtered replace is atomic).
   */
  PROJECTION_WRITERS: z.enum(['exclusive', 'shared']).default('exclusive'),
  /** Documents an exclusive writer keeps in memory per read model (its memory is bounded by this). */
  PROJECTION_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(50_000),
  WHATSAPP_SESSIONS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
});
export type WhatsAppConfig = z.infer<typeof Config>;
