import { z } from 'zod';

/** A resume point: the `CHANGES` stream's incarnation and a sequence in it. */
export const ResumePoint = z.object({ epoch: z.string().min(1), position: z.number().int().nonnegative() });
export type ResumePoint = z.infer<typeof ResumePoint>;

const Channel = z.string().min(1).max(512);

/**
 * The order of a channel's snapshot pages: `id` (the default: by `_id`, ascending) or `newest` (by the
 * channel's time field then `_id`, both descending: the newest page first, and `next` walks to older
 * ones). Only channels whose route has a time field (`timeField` in `ChannelRoutes`) serve `newest`.
 */
export const PageOrder = z.enum(['id', 'newest']);
export type PageOrder = z.infer<typeof PageOrder>;

/** Frames a client sends. */
export const ClientMessage = z.discriminatedUnion('op', [
  z.object({ op: z.literal('auth'), token: z.string().min(1) }),
  z.object({
    op: z.literal('subscribe'),
    channel: Channel,
    since: ResumePoint.optional(),
    /** The snapshot's page order (default `id`); a `more` page keeps the order its cursor was given in. */
    order: PageOrder.optional(),
  }),
  z.object({ op: z.literal('unsubscribe'), channel: Channel }),
  z.object({ op: z.literal('more'), channel: Channel, cursor: z.string().min(1) }),
  z.object({ op: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const ErrorCodes = {
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  badRequest: 'bad_request',
  unknownChannel: 'unknown_channel',
  positionExpired: 'position_expired',
  notSubscribed: 'not_subscribed',
  slowConsumer: 'slow_consumer',
  tooManySubscriptions: 'too_many_subscriptions',
  internal: 'internal',
} as const;

const Doc = z.record(z.string(), z.unknown());

/** Frames the server sends. */
export const ServerMessage = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ready'), sub: z.string() }),
  z.object({
    op: z.literal('snapshot'),
    channel: Channel,
    items: z.array(Doc),
    epoch: z.string(),
    position: z.number().int().nonnegative(),
    next: z.string().optional(),
  }),
  z.object({
    op: z.literal('update'),
    channel: Channel,
    doc: Doc,
    epoch: z.string(),
    position: z.number().int().nonnegative(),
  }),
  z.object({
    op: z.literal('remove'),
    channel: Channel,
    key: z.string(),
    epoch: z.string().optional(),
    position: z.number().int().nonnegative(),
  }),
  z.object({ op: z.literal('resync'), channel: Channel }),
  z.object({ op: z.literal('error'), code: z.string(), message: z.string().optional(), channel: Channel.optional() }),
  z.object({ op: z.literal('pong') }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** Core NATS subjects the realtime replicas listen on (not streams: a replica that is down has no subscribers to tell). */
export const RealtimeSubjects = {
  /** A read model was rebuilt: subscribers of its channels get `resync` and take a new snapshot. */
  resync: 'puente.realtime.resync',
} as const;

/** Which channels a `resync` is for: those of the named collections, or channels matching the patterns. */
export const ResyncNotice = z.object({
  collections: z.array(z.string().min(1)).optional(),
  channels: z.array(z.string().min(1)).optional(),
});
export type ResyncNotice = z.infer<typeof ResyncNotice>;
