import { z } from 'zod';
import { port } from '@puente/runtime';

/** The longest a signed media link may live (seconds): links are for one page view, not for sharing. */
export const MAX_MEDIA_LINK_TTL_S = 3600;

/** The service's environment: its port, per-connection limits, paging and timers (docs/realtime.md). */
export const Config = z.object({
  REALTIME_PORT: port().default(8090),
  /** Subscriptions one connection may hold. */
  REALTIME_MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Largest frame a client may send (bytes); larger closes the connection with 1009. */
  REALTIME_MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(256)
    .max(16 * 1024 * 1024)
    .default(64 * 1024),
  /** Bytes waiting to be sent to one client before it is closed as a slow consumer (1013). */
  REALTIME_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(1024 * 1024),
  /** Documents per snapshot or HTTP page. */
  REALTIME_PAGE_SIZE: z.coerce.number().int().min(1).max(5_000).default(200),
  /** A connection that has not authenticated within this time is closed. */
  REALTIME_AUTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Interval of the server's WebSocket pings; a connection silent for two is dropped. */
  REALTIME_HEARTBEAT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /** Lifetime of a signed stored-media link (`POST /media/<session>/<message id>/link`), seconds. */
  REALTIME_MEDIA_LINK_TTL_S: z.coerce.number().int().min(1).max(MAX_MEDIA_LINK_TTL_S).default(300),
  /** The gateway whose command API `POST /commands/...` forwards to (the inbox's send, mark read, sync now). */
  REALTIME_GATEWAY_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8080'),
  /** How long a forwarded command waits for the gateway before answering 504. */
  REALTIME_GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /**
   * The largest file an agent may attach in the inbox (`POST /media/<session>`), bytes: keep it at the
   * whatsapp service's `MEDIA_MAX_BYTES`, which refuses a larger one when it sends.
   */
  REALTIME_UPLOAD_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(2 * 1024 ** 3)
    .default(100 * 1024 ** 2),
  /** The media store's total budget as uploads see it: keep it at the whatsapp service's `MEDIA_BUDGET_BYTES`. */
  REALTIME_MEDIA_BUDGET_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(20 * 1024 ** 3),
});
export type RealtimeConfig = z.infer<typeof Config>;
