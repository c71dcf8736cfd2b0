import type { Db } from 'mongodb';
import type { MediaStore } from '@puente/media';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import {
  Collections,
  createEvent,
  jidKind,
  normalizeJid,
  type DomainEvent,
  type CommandKind,
  type DomainEventOf,
  type EventData,
  type EventType,
  type WhatsAppProvider,
} from '@puente/contracts';
import { eventIdFor, Outcomes, type Bus, type Outcome } from '@puente/bus';
import { ProviderError } from '@puente/runtime';
import type { CloudApiClient } from '../providers/cloudApi.js';
import type { GatewayClient } from '../providers/gateway.js';
import type { InboxHubClient } from '../providers/inboxhub.js';
import type { MessageDoc } from '../messages/messagesProjection.js';
import type { SessionDoc } from '../sessions/sessionsProjection.js';
import { findReportedSend } from './reconcile.js';
import {
  obtainOutgoingMedia,
  outgoingDescriptor,
  urlWithoutSecrets,
  OutgoingMediaError,
  type MediaFetchOptions,
  type OutgoingMedia,
} from './outgoingMedia.js';
import { SendQueueFullError, type SessionRateLimiter } from './rateLimit.js';
import { WabaNotConfiguredError } from '../templates/templateSync.js';

const SOURCE = 'urn:puente:whatsapp';

export interface CommandDeps {
  bus: Bus;
  db: Db;
  logger: Logger;
  /** Send attempts: a key is created (atomically) just before a send leaves; finding it means a previous attempt may have sent. */
  attempts: KV;
  limiter: SessionRateLimiter;
  /** Where a send's media is kept: read by hash, or written after a URL is fetched. */
  media: MediaStore;
  mediaFetch: MediaFetchOptions;
  inboxHub?: InboxHubClient | undefined;
  cloud?: CloudApiClient | undefined;
  /** The Baileys gateways that are configured (Evolution API, WAHA). */
  gateways?: Partial<Record<GatewayProvider, GatewayClient>>;
  /** Why a provider cannot be used (missing configuration), for the failure message. */
  unavailable: Partial<Record<WhatsAppProvider, string>>;
  /** Starts (or joins) a session's full sync through a provider; undefined when that provider cannot sync here. */
  startSync: (session: string, provider: Exclude<WhatsAppProvider, 'cloud-api'>) => Promise<unknown> | undefined;
  /** Reads a Cloud API session's message templates into `wa_templates` (its "sync now"); undefined without the Cloud API. */
  syncTemplates?: ((session: string) => Promise<number>) | undefined;
}

/** The providers whose sends go through a {@link GatewayClient}. */
type GatewayProvider = 'evolution' | 'waha';
const isGateway = (provider: WhatsAppProvider): provider is GatewayProvider =>
  provider === 'evolution' || provider === 'waha';
/** How many of a chat's newest incoming messages a gateway's mark-read names. */
const READ_RECEIPTS = 20;

type SendCommand = DomainEventOf<'whatsapp.send_message.v1'>;
type MarkReadCommand = DomainEventOf<'whatsapp.mark_read.v1'>;
type SyncSessionCommand = DomainEventOf<'whatsapp.sync_session.v1'>;

/**
 * Carries out `COMMANDS`: sends and mark-reads through Inbox Hub, the Cloud API, Evolution API or WAHA,
 * whichever hosts the session. A send's media is had first (from the media store, or fetched from its URL
 * and kept there); media that cannot be had fails the send before any provider is called. A send is at
 * most once: `message.send_requested` goes to `EVENTS` first (the message shows
 * `pending`), then an attempt key is created in KV, then the provider is called once. A redelivered
 * command that finds its attempt key was possibly sent already and ends `unknown`, never sent twice;
 * a refusal for now (rate limit) removes the key and retries; a refusal for good ends `failed`.
 */
export class CommandHandler {
  constructor(private readonly deps: CommandDeps) {}

  async handle(event: DomainEvent): Promise<Outcome> {
    if (event.type === 'whatsapp.send_message.v1') return this.send(event);
    if (event.type === 'whatsapp.mark_read.v1') return this.markRead(event);
    if (event.type === 'whatsapp.sync_session.v1') return this.syncSession(event);
    return Outcomes.dead(new Error(`not a WhatsApp command: ${event.type}`));
  }

  private async send(command: SendCommand): Promise<Outcome> {
    const c = command.data;
    const provider = await this.providerOf(c.session);
    const chatId = normalizeJid(c.to);
    // The bytes come first, before any attempt key: fetching is not sending, so a failed fetch may be retried.
    // A command seen again after an attempt is never failed for its media (the attempt may have sent it):
    // it skips the bytes and ends below as reported or unknown.
    let media: OutgoingMedia | undefined;
    let mediaError: OutgoingMediaError | undefined;
    const attempted = c.media ? (await this.deps.attempts.get(attemptKey(c.commandId)))?.operation === 'PUT' : false;
    if (c.media && !attempted)
      try {
        media = await obtainOutgoingMedia(this.deps.media, c.media, this.deps.mediaFetch);
      } catch (error) {
        if (!(error instanceof OutgoingMediaError)) throw error;
        mediaError = error;
      }
    const descriptor = c.media
      ? media
        ? outgoingDescriptor(media, c.media.url && urlWithoutSecrets(c.media.url))
        : {
            // Never a URL's query (a pre-signed link's signature) in the log; a hash only when it named
            // stored bytes (a redelivery after an attempt), not when they could not be found.
            ...(c.media.url ? { url: urlWithoutSecrets(c.media.url) } : {}),
            ...(c.media.hash && !mediaError ? { hash: c.media.hash } : {}),
            ...(c.media.mimeType ? { mimeType: c.media.mimeType } : {}),
            ...(c.media.fileName ? { fileName: c.media.fileName } : {}),
          }
      : undefined;
    const message = {
      type: c.template ? ('template' as const) : (c.media?.type ?? ('text' as const)),
      ...(c.text !== undefined ? { text: c.text } : {}),
      ...(descriptor ? { media: descriptor } : {}),
      ...(c.sentBy ? { sentBy: c.sentBy } : {}),
      requestedAt: c.requestedAt,
    };
    await this.publish('whatsapp.message.send_requested.v1', `send_requested:${c.commandId}`, {
      session: c.session,
      provider: provider ?? 'inboxhub',
      commandId: c.commandId,
      chatId,
      type: message.type,
      ...(c.text !== undefined ? { text: c.text } : {}),
      ...(message.media ? { media: message.media } : {}),
      ...(c.template ? { template: c.template } : {}),
      ...(c.sentBy ? { sentBy: c.sentBy } : {}),
      requestedAt: c.requestedAt,
    });
    const fail = (code: string, text: string) =>
      this.outcome('whatsapp.command.failed.v1', c.session, c.commandId, 'send_message', {
        chatId,
        error: { code, message: text },
      });
    if (mediaError) return fail(mediaError.code, mediaError.message);
    if (!provider)
      return fail(
        'PROVIDER_UNKNOWN',
        `no provider is known for session ${c.session}: no event of it has been seen and no sending provider is configured`,
      );
    const client =
      provider === 'inboxhub'
        ? this.deps.inboxHub
        : provider === 'cloud-api'
          ? this.deps.cloud
          : this.deps.gateways?.[provider];
    if (!client)
      return fail(
        'PROVIDER_NOT_CONFIGURED',
        this.deps.unavailable[provider] ?? `sending through ${provider} is not supported`,
      );
    if (isGateway(provider) && c.template)
      return fail('UNSUPPORTED_MESSAGE', 'templates are sent through the Cloud API only');
    if (provider === 'cloud-api' && jidKind(chatId) === 'group')
      return fail('UNSUPPORTED_RECIPIENT', 'the Cloud API cannot send to groups');

    try {
      await this.deps.limiter.acquire(c.session);
    } catch (error) {
      if (error instanceof SendQueueFullError) return Outcomes.retry(error, 5_000);
      throw error;
    }
    // A send whose result is not known is settled by the provider's own report of it, when one has arrived:
    // the command is then sent (reconciled), never sent again.
    const reportedSend = async (): Promise<Outcome | undefined> => {
      const reported = await findReportedSend(this.deps.db, {
        session: c.session,
        chatId,
        text: c.text,
        requestedAt: c.requestedAt,
      });
      return reported
        ? this.outcome('whatsapp.command.sent.v1', c.session, c.commandId, 'send_message', {
            chatId,
            providerMessageId: reported.messageId,
            message,
            reconciled: true,
          })
        : undefined;
    };
    try {
      await this.deps.attempts.create(
        attemptKey(c.commandId),
        new TextEncoder().encode(JSON.stringify({ at: new Date().toISOString() })),
      );
    } catch {
      // The key exists: an earlier attempt got this far and may have sent. Never again; but if the
      // provider already reported the message, that proves it went out.
      const reported = await reportedSend();
      if (reported) return reported;
      this.deps.logger.warn(
        { commandId: c.commandId, session: c.session },
        'send command seen again after an attempt: its result is unknown, not sending twice',
      );
      return this.outcome('whatsapp.command.unknown.v1', c.session, c.commandId, 'send_message', {
        chatId,
        error: { code: 'RESULT_LOST', message: 'a previous attempt may have sent it; it is not sent again' },
      });
    }
    // The attempt key was gone after all (a refusal for now removed it meanwhile): the bytes were never
    // had, so this is not sent without them; the next delivery has them first.
    if (c.media && !media) {
      await this.deps.attempts.delete(attemptKey(c.commandId));
      return Outcomes.retry(new Error('the send was seen again without its media in hand'), 1_000);
    }
    try {
      const providerMessageId =
        provider === 'inboxhub' || isGateway(provider)
          ? await (provider === 'inboxhub' ? this.deps.inboxHub! : this.deps.gateways![provider]!).send(c.session, {
              to: chatId,
              ...(c.text !== undefined ? { text: c.text } : {}),
              ...(media ? { media } : {}),
            })
          : await this.deps.cloud!.send(c.session, {
              to: chatId.endsWith('@bsuid') ? chatId.slice(0, -'@bsuid'.length) : chatId,
              ...(c.text !== undefined ? { text: c.text } : {}),
              ...(media ? { media } : {}),
              ...(c.template ? { template: c.template } : {}),
            });
      return this.outcome('whatsapp.command.sent.v1', c.session, c.commandId, 'send_message', {
        chatId,
        providerMessageId,
        message,
      });
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      if (error.kind === 'rate_limited') {
        await this.deps.attempts.delete(attemptKey(c.commandId));
        return Outcomes.retry(error, error.retryAfterMs ?? 1_000);
      }
      if (error.kind === 'unknown') {
        const reported = await reportedSend();
        if (reported) return reported;
        return this.outcome('whatsapp.command.unknown.v1', c.session, c.commandId, 'send_message', {
          chatId,
          error: { code: error.code, message: error.message },
        });
      }
      return fail(error.code, error.message);
    }
  }

  private async markRead(command: MarkReadCommand): Promise<Outcome> {
    const c = command.data;
    const chatId = normalizeJid(c.chatId);
    const provider = await this.providerOf(c.session);
    const fail = (code: string, text: string) =>
      this.outcome('whatsapp.command.failed.v1', c.session, c.commandId, 'mark_read', {
        chatId,
        error: { code, message: text },
      });
    const gateway = provider && isGateway(provider) ? this.deps.gateways?.[provider] : undefined;
    try {
      if (provider === 'inboxhub' && this.deps.inboxHub) await this.deps.inboxHub.markRead(c.session, chatId);
      else if (provider === 'cloud-api' && this.deps.cloud) {
        // The Cloud API marks read up to a message: the chat's newest inbound one.
        const [last] = await this.newestInbound(c.session, chatId, 1);
        if (last) await this.deps.cloud.markRead(c.session, last);
      } else if (gateway)
        // Baileys marks messages read, not chats: the gateways are given the chat's newest inbound ones.
        await gateway.markRead(c.session, chatId, await this.newestInbound(c.session, chatId, READ_RECEIPTS));
      else
        return fail(
          provider ? 'PROVIDER_NOT_CONFIGURED' : 'PROVIDER_UNKNOWN',
          provider
            ? (this.deps.unavailable[provider] ?? `mark-read through ${provider} is not supported`)
            : `no provider is known for session ${c.session}`,
        );
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      // Marking read is safe to repeat: anything but a refusal for good is retried.
      if (error.kind === 'rejected' || error.kind === 'auth') return fail(error.code, error.message);
      return Outcomes.retry(error, error.retryAfterMs);
    }
    return this.outcome('whatsapp.command.sent.v1', c.session, c.commandId, 'mark_read', { chatId });
  }

  /**
   * "Sync now": starts the session's full sync through the provider its read model names, and answers
   * `sent` once it runs (or already ran: a sync in progress is joined, not doubled). The sync is not
   * awaited: it can take minutes, and the session's sends queue behind its commands; its progress and
   * end are `whatsapp.session.sync.v1` events.
   */
  private async syncSession(command: SyncSessionCommand): Promise<Outcome> {
    const c = command.data;
    const provider = await this.providerOf(c.session);
    const fail = (code: string, text: string) =>
      this.outcome('whatsapp.command.failed.v1', c.session, c.commandId, 'sync_session', {
        error: { code, message: text },
      });
    if (!provider) return fail('PROVIDER_UNKNOWN', `no provider is known for session ${c.session}`);
    if (provider === 'cloud-api') {
      // No history to sync (messages arrive only by webhook): "sync now" reads the number's templates.
      if (!this.deps.syncTemplates)
        return fail('SYNC_NOT_SUPPORTED', 'the Cloud API has no history to sync: messages arrive only by webhook');
      try {
        await this.deps.syncTemplates(c.session);
      } catch (error) {
        if (error instanceof WabaNotConfiguredError) return fail('SYNC_NOT_SUPPORTED', error.message);
        // A throttle or an answer that never came is retried; a refusal ends the command.
        if (error instanceof ProviderError && (error.kind === 'rejected' || error.kind === 'auth'))
          return fail(error.code, error.message);
        throw error;
      }
      return this.outcome('whatsapp.command.sent.v1', c.session, c.commandId, 'sync_session', {});
    }
    const run = this.deps.startSync(c.session, provider);
    if (!run)
      return fail(
        'PROVIDER_NOT_CONFIGURED',
        this.deps.unavailable[provider] ?? `a full sync through ${provider} is not configured`,
      );
    return this.outcome('whatsapp.command.sent.v1', c.session, c.commandId, 'sync_session', {});
  }

  /** The ids of a chat's newest incoming messages, newest first. */
  private async newestInbound(session: string, chatId: string, limit: number): Promise<string[]> {
    const docs = await this.deps.db
      .collection<MessageDoc & { _id: string }>(Collections.waMessages)
      .find({ session, chatId, direction: 'in' }, { projection: { messageId: 1 } })
      .sort({ timestamp: -1 })
      .limit(limit)
      .toArray();
    return docs.map((doc) => doc.messageId);
  }

  /** The session's provider from its read model; without one, the only sending provider configured, if just one is. */
  private async providerOf(session: string): Promise<WhatsAppProvider | undefined> {
    const doc = await this.deps.db
      .collection<SessionDoc & { _id: string }>(Collections.waSessions)
      .findOne({ _id: session }, { projection: { provider: 1 } });
    if (doc?.provider) return doc.provider;
    const configured = (['inboxhub', 'cloud-api', 'evolution', 'waha'] as const).filter((p) =>
      p === 'inboxhub' ? this.deps.inboxHub : p === 'cloud-api' ? this.deps.cloud : this.deps.gateways?.[p],
    );
    if (configured.length === 1) return configured[0];
    return /^\d{6,20}$/.test(session) && this.deps.cloud ? 'cloud-api' : this.deps.inboxHub ? 'inboxhub' : undefined;
  }

  private async outcome(
    type: 'whatsapp.command.sent.v1' | 'whatsapp.command.failed.v1' | 'whatsapp.command.unknown.v1',
    session: string,
    commandId: string,
    kind: CommandKind,
    fields: Omit<EventData<'whatsapp.command.sent.v1'>, 'session' | 'commandId' | 'kind' | 'at'>,
  ): Promise<Outcome> {
    await this.publish(type, `${type.split('.')[2]}:${commandId}`, {
      session,
      commandId,
      kind,
      ...fields,
      at: new Date().toISOString(),
    });
    return Outcomes.ack;
  }

  private async publish<T extends EventType>(type: T, msgId: string, data: EventData<T>): Promise<void> {
    const event = createEvent(type, data, { source: SOURCE, id: eventIdFor(msgId) });
    await this.deps.bus.publishEvent(event as DomainEvent, { msgId });
  }
}

/** The KV key of a send's attempt. */
export const attemptKey = (commandId: string) => `send.${commandId.replace(/[^A-Za-z0-9_=-]/g, '_')}`;
