import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import {
  Collections,
  createEvent,
  decodeEvent,
  type DomainEvent,
  type MediaFailureCode,
  type WhatsAppProvider,
} from '@puente/contracts';
import { eachConcurrently, eventIdFor, Outcomes, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { MediaRejectedError, type MediaStore } from '@puente/media';
import { isContentEvent, messageKey, type ContentEvent } from '../messages/facts.js';
import type { MessageDoc } from '../messages/messagesProjection.js';
import { mediaTypeOf } from './sniff.js';
import { MediaTransientError, MediaUnavailableError, type MediaItem, type MediaSource } from './source.js';

const SOURCE = 'urn:puente:whatsapp:media';

/** The message types whose media is kept. */
const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'voice', 'document', 'sticker']);

/** First retry delay of a transient failure; it doubles per attempt up to {@link MAX_RETRY_DELAY_MS}. */
const FIRST_RETRY_DELAY_MS = 1_000;
const MAX_RETRY_DELAY_MS = 300_000;

/** The wait before delivery `attempt + 1` after attempt `attempt` (from 1) failed transiently. */
export function mediaRetryDelayMs(attempt: number): number {
  return Math.min(FIRST_RETRY_DELAY_MS * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
}

/**
 * Whether attempt `attempt` failing transiently is the last one: the waits so far and the next one
 * would pass `retryForMs`. Counted from the delivery count, so it holds across restarts.
 */
export function mediaRetriesExhausted(attempt: number, retryForMs: number): boolean {
  let waited = 0;
  for (let n = 1; n <= attempt; n++) waited += mediaRetryDelayMs(n);
  return waited > retryForMs;
}

/** Deliveries a media download may take within `retryForMs` (the consumer's `max_deliver` is set above it). */
export function mediaAttemptsWithin(retryForMs: number): number {
  let attempt = 1;
  while (!mediaRetriesExhausted(attempt, retryForMs)) attempt++;
  return attempt;
}

export interface MediaWorkerOptions {
  bus: Bus;
  db: Db;
  store: MediaStore;
  logger: Logger;
  /** A source per provider whose media can be downloaded. */
  sources: Partial<Record<WhatsAppProvider, MediaSource>>;
  /** Why a provider has no source (its API is not configured). */
  unavailable: Partial<Record<WhatsAppProvider, string>>;
  maxBytes: number;
  concurrency: number;
  retryForMs: number;
}

/**
 * Keeps incoming media: for every content event whose media Puente does not hold yet, downloads it from
 * the message's provider, stores it (content-addressed: a duplicate stores nothing new) and records the
 * outcome as `whatsapp.media.stored.v1` or `whatsapp.media.failed.v1`. Transient failures are retried
 * with growing delays for MEDIA_RETRY_FOR_MS, then the media is `UNREACHABLE`; so every media message
 * ends `stored` or `unavailable`. Its own consumer: a slow download never holds up the read models.
 */
export class MediaWorker {
  constructor(private readonly options: MediaWorkerOptions) {}

  /** A batch's downloads side by side (the batch is at most MEDIA_DOWNLOAD_CONCURRENCY long). */
  async handle(deliveries: readonly Delivery[]): Promise<Outcome[]> {
    const outcomes = new Array<Outcome>(deliveries.length);
    await eachConcurrently(deliveries, this.options.concurrency, async (delivery, i) => {
      outcomes[i] = await this.handleOne(delivery).catch((error: unknown) => Outcomes.fromError(error));
    });
    return outcomes;
  }

  private async handleOne(delivery: Delivery): Promise<Outcome> {
    let event: DomainEvent;
    try {
      event = decodeEvent(delivery.data);
    } catch (error) {
      return Outcomes.dead(error);
    }
    if (!isContentEvent(event)) return Outcomes.ack;
    const d = event.data;
    if (!d.media || d.media.hash || !MEDIA_TYPES.has(d.type)) return Outcomes.ack;
    if (await this.alreadyStored(d.session, d.messageId)) return Outcomes.ack;
    const item: MediaItem = {
      session: d.session,
      provider: d.provider,
      messageId: d.messageId,
      chatId: d.chatId,
      fromMe: d.fromMe,
      media: d.media,
    };
    try {
      await this.keep(event, item);
      return Outcomes.ack;
    } catch (error) {
      if (error instanceof MediaUnavailableError || error instanceof MediaRejectedError) {
        await this.failed(item, error.code, error.message);
        return Outcomes.ack;
      }
      // Anything else (the database, the bus) is passing too, and ends on the same schedule: a message
      // whose media never gets a state would be answered "not kept yet" for ever.
      const transient =
        error instanceof MediaTransientError
          ? error
          : new MediaTransientError(`keeping it failed: ${(error as Error).message}`);
      const attempt = Math.max(1, delivery.deliveryCount);
      if (mediaRetriesExhausted(attempt, this.options.retryForMs)) {
        await this.failed(item, 'UNREACHABLE', `gave up after ${attempt} attempts: ${transient.message}`);
        return Outcomes.ack;
      }
      const delayMs = Math.max(mediaRetryDelayMs(attempt), transient.retryAfterMs ?? 0);
      this.options.logger.info(
        { session: item.session, messageId: item.messageId, attempt, delayMs, err: transient.message },
        'media download failed for now; retrying',
      );
      return Outcomes.retry(transient, delayMs);
    }
  }

  private async keep(event: ContentEvent, item: MediaItem): Promise<void> {
    const source = this.options.sources[item.provider];
    if (!source)
      throw new MediaUnavailableError(
        'NO_SOURCE',
        this.options.unavailable[item.provider] ?? `no media download for ${item.provider}`,
      );
    const got = await source.download(item, { maxBytes: this.options.maxBytes });
    const mimeType = mediaTypeOf(got.bytes, got.mimeType, item.media.mimeType);
    const fileName = got.fileName ?? item.media.fileName;
    const { media } = await this.options.store.put(got.bytes, {
      contentType: mimeType,
      ...(fileName ? { fileName } : {}),
    });
    await this.publish(
      createEvent(
        'whatsapp.media.stored.v1',
        {
          session: item.session,
          provider: item.provider,
          messageId: item.messageId,
          chatId: item.chatId,
          hash: media.hash,
          bytes: media.length,
          mimeType,
          ...(fileName ? { fileName } : {}),
          timestamp: new Date().toISOString(),
        },
        { source: SOURCE, id: eventIdFor(`media:${item.session}:${item.messageId}:stored`) },
      ) as DomainEvent,
    );
    this.options.logger.debug(
      { session: item.session, messageId: item.messageId, type: event.data.type, bytes: media.length },
      'media kept',
    );
  }

  private async failed(item: MediaItem, code: MediaFailureCode, message: string): Promise<void> {
    this.options.logger.warn(
      { session: item.session, messageId: item.messageId, code, err: message },
      'media not kept',
    );
    await this.publish(
      createEvent(
        'whatsapp.media.failed.v1',
        {
          session: item.session,
          provider: item.provider,
          messageId: item.messageId,
          chatId: item.chatId,
          code,
          message,
          timestamp: new Date().toISOString(),
        },
        { source: SOURCE, id: eventIdFor(`media:${item.session}:${item.messageId}:failed:${code}`) },
      ) as DomainEvent,
    );
  }

  private async publish(event: DomainEvent): Promise<void> {
    await this.options.bus.publishEvent(event);
  }

  /** The message document already says its media is kept (a redelivery, a later import of the same message). */
  private async alreadyStored(session: string, messageId: string): Promise<boolean> {
    const doc = await this.options.db
      .collection<MessageDoc & { _id: string }>(Collections.waMessages)
      .findOne({ _id: messageKey(session, messageId) }, { projection: { media: 1 } });
    return doc?.media?.state === 'stored';
  }
}
