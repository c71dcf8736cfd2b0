import 'reflect-metadata';
import { Controller, Inject, Module, type DynamicModule } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import { decodeEvent, type WhatsAppProvider } from '@puente/contracts';
import { Outcomes, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { MediaStore } from '@puente/media';
import type { ServiceDefinition } from '@puente/runtime';
import { OnJetStream, startJetStreamService, type ConsumerBinding } from '@puente/nest-jetstream';
import { Buckets, openBuckets } from './buckets.js';
import { CommandHandler } from './commands/handler.js';
import { SessionRateLimiter } from './commands/rateLimit.js';
import { reconcileSent, sweepUnknownSends } from './commands/reconcile.js';
import { Config, type WhatsAppConfig } from './config.js';
import { consumersFor, type WhatsAppConsumers } from './consumers.js';
import { CloudApiMediaSource } from './media/cloudApiMedia.js';
import { EvolutionMediaSource } from './media/evolutionMedia.js';
import { InboxHubMediaSource } from './media/inboxHubMedia.js';
import { MediaWorker, mediaAttemptsWithin, mediaRetryDelayMs } from './media/mediaWorker.js';
import type { MediaSource } from './media/source.js';
import { WahaMediaSource } from './media/wahaMedia.js';
import { WhatsAppProjections } from './readModels.js';
import { CloudApiClient } from './providers/cloudApi.js';
import { evolutionFrom } from './providers/evolution.js';
import { inboxHubFrom } from './providers/inboxhub.js';
import { wahaFrom } from './providers/waha.js';
import { FullSync, SYNC_STALE_MS, SyncBusyError, type SyncState } from './sync/fullSync.js';
import { inboxHubSource, type SyncSource } from './sync/source.js';
import { TemplateSync, WabaDirectory } from './templates/templateSync.js';

/** The providers whose sessions are fully synced on connect. */
export type SyncProvider = 'inboxhub' | 'evolution' | 'waha';

/** Everything the service runs, built from its configuration; `module()` is the Nest module of its consumers. */
export class WhatsAppApp {
  readonly projections: WhatsAppProjections;
  readonly commands: CommandHandler;
  /** Media kept in MONGO_URL's database (GridFS layout, bucket `media`). */
  readonly media: MediaStore;
  /** Downloads incoming media into `media` (its own consumer, `whatsapp-media`). */
  readonly mediaWorker: MediaWorker;
  /** Inbox Hub's full sync, when its API is configured. */
  readonly sync: FullSync | undefined;
  /** Every configured provider's full sync (Inbox Hub, Evolution API, WAHA). */
  readonly syncs: Partial<Record<SyncProvider, FullSync>>;
  /** Cloud API sessions' message templates (`wa_templates`), when the Cloud API is configured. */
  readonly templates: TemplateSync | undefined;
  private readonly running = new Map<string, Promise<unknown>>();
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | undefined;

  constructor(
    private readonly deps: {
      bus: Bus;
      db: Db;
      logger: Logger;
      config: WhatsAppConfig;
      buckets: { sync: KV; attempts: KV };
    },
  ) {
    const { bus, db, logger, config } = deps;
    this.projections = new WhatsAppProjections(db, bus, {
      writers: config.PROJECTION_WRITERS,
      cacheSize: config.PROJECTION_CACHE_SIZE,
    });
    this.media = new MediaStore(db, { maxItemBytes: config.MEDIA_MAX_BYTES, budgetBytes: config.MEDIA_BUDGET_BYTES });
    const inboxHub = inboxHubFrom(config);
    const cloud = config.WHATSAPP_ACCESS_TOKEN
      ? new CloudApiClient({
          graphUrl: config.WHATSAPP_GRAPH_URL,
          accessToken: config.WHATSAPP_ACCESS_TOKEN,
          timeoutMs: config.WHATSAPP_TIMEOUT_MS,
        })
      : undefined;
    const evolution = evolutionFrom(config);
    const waha = wahaFrom(config);
    this.templates = cloud
      ? new TemplateSync({
          bus,
          db,
          logger,
          source: cloud,
          wabas: new WabaDirectory(config.WHATSAPP_WABA_IDS, config.WHATSAPP_WABA_ID),
        })
      : undefined;
    this.mediaWorker = mediaWorkerFrom({ bus, db, logger, config, store: this.media, inboxHub });
    this.commands = new CommandHandler({
      bus,
      db,
      logger,
      attempts: deps.buckets.attempts,
      limiter: new SessionRateLimiter(config.WHATSAPP_SEND_RATE, config.WHATSAPP_SEND_QUEUE),
      media: this.media,
      mediaFetch: { timeoutMs: config.MEDIA_FETCH_TIMEOUT_MS, privateNetworks: config.MEDIA_FETCH_PRIVATE_NETWORKS },
      inboxHub: typeof inboxHub === 'string' ? undefined : inboxHub,
      cloud,
      gateways: {
        ...(typeof evolution === 'string' ? {} : { evolution }),
        ...(typeof waha === 'string' ? {} : { waha }),
      },
      unavailable: {
        ...(typeof inboxHub === 'string' ? { inboxhub: inboxHub } : {}),
        ...(cloud ? {} : { 'cloud-api': 'Cloud API sending not configured: set WHATSAPP_ACCESS_TOKEN' }),
        ...(typeof evolution === 'string' ? { evolution } : {}),
        ...(typeof waha === 'string' ? { waha } : {}),
      },
      startSync: (session, provider) => {
        // A command during shutdown is retried by the next instance, not failed as unconfigured.
        if (this.stopping) throw new Error('the service is stopping');
        return this.startSync(session, provider);
      },
      syncTemplates: this.templates ? (session) => this.templates!.sync(session) : undefined,
    });
    // One set of limits (INBOXHUB_SYNC_*) for every provider's full sync.
    const fullSync = (source: SyncSource) =>
      new FullSync({
        bus,
        kv: deps.buckets.sync,
        source,
        logger,
        limits: {
          chats: config.INBOXHUB_SYNC_CHATS,
          messagesPerChat: config.INBOXHUB_SYNC_MESSAGES,
          pageSize: config.INBOXHUB_SYNC_PAGE_SIZE,
        },
        staleAfterMs: config.INBOXHUB_SYNC_STALE_MS,
      });
    this.sync = typeof inboxHub === 'string' ? undefined : fullSync(inboxHubSource(inboxHub));
    this.syncs = {
      ...(this.sync ? { inboxhub: this.sync } : {}),
      ...(typeof evolution === 'string' ? {} : { evolution: fullSync(evolution) }),
      ...(typeof waha === 'string' ? {} : { waha: fullSync(waha) }),
    };
    if (typeof inboxHub === 'string')
      logger.info({ reason: inboxHub }, 'full sync and sending through Inbox Hub are off');
  }

  /** Commands of a batch: one session's in order, sessions side by side. */
  async handleCommands(deliveries: readonly Delivery[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array<Outcome>(deliveries.length);
    const bySession = new Map<string, number[]>();
    deliveries.forEach((delivery, i) => {
      try {
        const event = decodeEvent(delivery.data);
        const session = (event.data as { session: string }).session;
        bySession.set(session, [...(bySession.get(session) ?? []), i]);
      } catch (error) {
        outcomes[i] = Outcomes.dead(error);
      }
    });
    await Promise.all(
      [...bySession.values()].map(async (indexes) => {
        for (const i of indexes) {
          try {
            outcomes[i] = await this.commands.handle(decodeEvent(deliveries[i]!.data));
          } catch (error) {
            outcomes[i] = Outcomes.fromError(error);
          }
        }
      }),
    );
    return outcomes;
  }

  /**
   * A session that connects gets a full sync (Inbox Hub, Evolution API and WAHA sessions, when that
   * provider's API is configured; not for old events).
   */
  async onSessionStatus(delivery: Delivery): Promise<void> {
    const event = decodeEvent(delivery.data);
    if (event.type !== 'whatsapp.session.status.v1' || event.data.status !== 'connected') return;
    const provider = event.data.provider;
    if (provider === 'cloud-api') return;
    if (Date.now() - Date.parse(event.data.timestamp) > SYNC_STALE_MS * 60) return;
    // In the background: startSync logs its own failure.
    void this.startSync(event.data.session, provider);
  }

  /** Starts (or joins) a background sync of a session (of Inbox Hub unless `provider` says). */
  startSync(session: string, provider: SyncProvider = 'inboxhub'): Promise<unknown> | undefined {
    const sync = this.syncs[provider];
    if (!sync || this.stopping) return undefined;
    const key = `${provider}:${session}`;
    const current = this.running.get(key);
    if (current) return current;
    const run = sync
      .run(session)
      .catch((error: unknown) => {
        if (error instanceof SyncBusyError) this.deps.logger.info({ session }, error.message);
        else this.deps.logger.error({ session, err: (error as Error).message }, 'full sync stopped');
      })
      .finally(() => this.running.delete(key));
    this.running.set(key, run);
    return run;
  }

  /** Resumes syncs whose worker died (their state says running, their heartbeat is old), of this instance's sessions. */
  async resumeStaleSyncs(): Promise<void> {
    if (Object.keys(this.syncs).length === 0) return;
    // The stream's subject list, not `kv.keys()`: nats.js's key iterator can stop before the last key.
    const prefix = `$KV.${Buckets.sync}.`;
    const info = await this.deps.bus.jsm.streams.info(`KV_${Buckets.sync}`, { subjects_filter: `${prefix}sync.>` });
    for (const key of Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length))) {
      const entry = await this.deps.buckets.sync.get(key);
      if (!entry || entry.length === 0) continue;
      const state = JSON.parse(new TextDecoder().decode(entry.value)) as SyncState;
      const mine = !this.deps.config.WHATSAPP_SESSIONS || this.deps.config.WHATSAPP_SESSIONS.includes(state.session);
      const provider = state.provider ?? 'inboxhub';
      const sync = this.syncs[provider];
      if (sync && mine && state.phase === 'running' && Date.now() - state.heartbeatAt >= sync.staleAfterMs)
        void this.startSync(state.session, provider);
    }
  }

  /**
   * Reads the templates of the Cloud API sessions with a known WhatsApp Business Account, in the
   * background (a failure is logged; "sync now" reads them again).
   */
  syncTemplatesAtStart(): Promise<void> {
    const templates = this.templates;
    if (!templates) return Promise.resolve();
    const run = (async () => {
      for (const session of await templates.sessionsAtStart(this.deps.config.WHATSAPP_SESSIONS)) {
        if (this.stopping) return;
        await templates
          .sync(session)
          .catch((error: unknown) =>
            this.deps.logger.warn({ session, err: (error as Error).message }, 'could not read the templates'),
          );
      }
    })().catch((error: unknown) =>
      this.deps.logger.warn({ err: (error as Error).message }, 'could not read the templates at start'),
    );
    this.running.set('templates:start', run);
    void run.finally(() => this.running.delete('templates:start'));
    return run;
  }

  /** Starts the periodic sweep of sends whose result was lost. */
  startReconciling(): void {
    const { db, bus, config, logger } = this.deps;
    this.sweeper = setInterval(() => {
      this.sweeping ??= sweepUnknownSends(db, bus, config.WHATSAPP_SESSIONS)
        .then(
          (proven) =>
            proven > 0 &&
            logger.info({ proven }, "sends whose result was lost are proven sent by the provider's reports"),
        )
        .catch((error: unknown) =>
          logger.warn({ err: (error as Error).message }, 'reconciling lost sends failed; retrying on the next sweep'),
        )
        .finally(() => (this.sweeping = undefined));
    }, config.WHATSAPP_RECONCILE_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    await this.sweeping;
    await Promise.race([
      Promise.all(this.running.values()),
      new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
    ]);
  }

  /** Settles a provider's report of an outgoing message against the send it answers. */
  async reconcileSent(event: Parameters<typeof reconcileSent>[0]): Promise<void> {
    await reconcileSent(event, this.deps.db, this.deps.bus);
  }

  /** The Nest module whose controller is the service's JetStream consumers, given this app through a provider. */
  module(): DynamicModule {
    return {
      module: WhatsAppModule,
      controllers: [WhatsAppConsumersController],
      providers: [{ provide: WhatsAppApp, useValue: this }],
    };
  }
}

/**
 * The service's JetStream consumers. Their definitions are bound at start (`bindConsumers`): the sessions
 * an instance serves, and the commands' ack wait, come from configuration.
 */
@Controller()
class WhatsAppConsumersController {
  constructor(@Inject(WhatsAppApp) private readonly app: WhatsAppApp) {}

  @OnJetStream('projections', { batch: true })
  project(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.app.projections.handler()(deliveries) as Promise<Outcome[]>;
  }

  @OnJetStream('commands', {
    batch: true,
    runner: { batchSize: 32, maxAttempts: 20, backoffMs: [1_000, 5_000, 30_000] },
  })
  command(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.app.handleCommands(deliveries);
  }

  @OnJetStream('syncTrigger', { raw: true })
  sessionStatus(delivery: Delivery): Promise<void> {
    return this.app.onSessionStatus(delivery);
  }

  @OnJetStream('media', { batch: true })
  keepMedia(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.app.mediaWorker.handle(deliveries);
  }

  @OnJetStream('reconciler')
  async outgoing(event: Parameters<typeof reconcileSent>[0]): Promise<void> {
    await this.app.reconcileSent(event);
  }
}

@Module({})
class WhatsAppModule {}

/** The consumers bound to the controller's handlers, with the run-time options that come from configuration. */
function bindConsumers(
  consumers: WhatsAppConsumers,
  config: WhatsAppConfig,
): Record<keyof WhatsAppConsumers, ConsumerBinding> {
  return {
    projections: { consumer: consumers.projections },
    // A short ack wait: a handler keeps its messages alive while it works, so only a dead instance's commands wait this long.
    commands: { consumer: consumers.commands, runner: { ackWaitMs: Math.min(10_000, config.WHATSAPP_ACK_WAIT_MS) } },
    syncTrigger: { consumer: consumers.syncTrigger },
    reconciler: { consumer: consumers.reconciler },
    media: { consumer: consumers.media, runner: mediaRunner(config) },
  };
}

/**
 * The media consumer's runner: batches of several downloads' worth, and more
 * deliveries than the worker's own retry schedule takes (it ends a message `UNREACHABLE` itself, within
 * MEDIA_RETRY_FOR_MS); other failures (the store, the bus) wait on the same growing delays.
 */
function mediaRunner(config: WhatsAppConfig): ConsumerBinding['runner'] {
  const attempts = mediaAttemptsWithin(config.MEDIA_RETRY_FOR_MS);
  return {
    // Batches several times the downloads that run at once: the worker keeps MEDIA_DOWNLOAD_CONCURRENCY
    // busy through a batch, so only its end waits for the slowest.
    batchSize: config.MEDIA_DOWNLOAD_CONCURRENCY * 8,
    // Media waiting out a retry delay stays pending: room for many, so one provider that is down does
    // not hold up the media of the others.
    maxAckPending: 1_000,
    maxAttempts: attempts + 1,
    backoffMs: Array.from({ length: attempts }, (_, i) => mediaRetryDelayMs(i + 1)),
  };
}

/** The media worker with a source for every provider whose API is configured, and why the others have none. */
function mediaWorkerFrom(deps: {
  bus: Bus;
  db: Db;
  logger: Logger;
  config: WhatsAppConfig;
  store: MediaStore;
  inboxHub: ReturnType<typeof inboxHubFrom>;
}): MediaWorker {
  const { config } = deps;
  const timeoutMs = config.MEDIA_DOWNLOAD_TIMEOUT_MS;
  const sources: Partial<Record<WhatsAppProvider, MediaSource>> = {};
  const unavailable: Partial<Record<WhatsAppProvider, string>> = {};
  if (config.WHATSAPP_ACCESS_TOKEN)
    sources['cloud-api'] = new CloudApiMediaSource({
      graphUrl: config.WHATSAPP_GRAPH_URL,
      accessToken: config.WHATSAPP_ACCESS_TOKEN,
      timeoutMs,
    });
  else unavailable['cloud-api'] = 'Cloud API media download not configured: set WHATSAPP_ACCESS_TOKEN';
  // Without Inbox Hub's API a webhook's media URL on another host is still downloaded.
  sources.inboxhub =
    typeof deps.inboxHub === 'string'
      ? new InboxHubMediaSource(undefined, {
          mediaPath: config.INBOXHUB_MEDIA_PATH,
          timeoutMs,
          unconfigured: deps.inboxHub,
        })
      : new InboxHubMediaSource(deps.inboxHub, { mediaPath: config.INBOXHUB_MEDIA_PATH, timeoutMs });
  // Without Evolution's API its S3 media URLs (when it stores media there) are still downloaded.
  sources.evolution = new EvolutionMediaSource({
    ...(config.EVOLUTION_API_URL && config.EVOLUTION_API_KEY
      ? { api: { url: config.EVOLUTION_API_URL, key: config.EVOLUTION_API_KEY } }
      : { unconfigured: 'set EVOLUTION_API_URL and EVOLUTION_API_KEY' }),
    timeoutMs,
  });
  if (config.WAHA_API_URL && config.WAHA_API_KEY)
    sources.waha = new WahaMediaSource({
      apiUrl: config.WAHA_API_URL,
      apiKey: config.WAHA_API_KEY,
      messagePath: config.WAHA_MESSAGE_PATH,
      timeoutMs,
    });
  else unavailable.waha = 'WAHA media download not configured: set WAHA_API_URL and WAHA_API_KEY';
  return new MediaWorker({
    bus: deps.bus,
    db: deps.db,
    store: deps.store,
    logger: deps.logger,
    sources,
    unavailable,
    maxBytes: config.MEDIA_MAX_BYTES,
    concurrency: config.MEDIA_DOWNLOAD_CONCURRENCY,
    retryForMs: config.MEDIA_RETRY_FOR_MS,
  });
}

/** Builds and starts the service's consumers on a bus and database (the service's `start`, and tests); `WHATSAPP_SESSIONS` scopes them. */
export async function startWhatsApp(deps: {
  bus: Bus;
  db: Db;
  logger: Logger;
  config: WhatsAppConfig;
  consumers?: WhatsAppConsumers;
}): Promise<{ app: WhatsAppApp; stop: () => Promise<void> }> {
  const buckets = await openBuckets(deps.bus);
  const app = new WhatsAppApp({ ...deps, buckets });
  await app.projections.init();
  const consumers = bindConsumers(deps.consumers ?? consumersFor(deps.config.WHATSAPP_SESSIONS), deps.config);
  const { stop } = await startJetStreamService(app.module(), {
    bus: deps.bus,
    service: 'whatsapp',
    logger: deps.logger,
    runner: { ackWaitMs: deps.config.WHATSAPP_ACK_WAIT_MS },
    consumers,
  });
  await app.resumeStaleSyncs();
  void app.syncTemplatesAtStart();
  app.startReconciling();
  return {
    app,
    stop: async () => {
      await app.stop();
      await stop();
      // The checkpoint trails the batches by up to a quarter second: write the last one.
      await app.projections
        .close()
        .catch((error: Error) => deps.logger.warn({ err: error.message }, 'could not write the last checkpoint'));
    },
  };
}

export const service: ServiceDefinition<typeof Config> = {
  name: 'whatsapp',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8082 },
  async start({ bus, db, logger, config }) {
    const { stop } = await startWhatsApp({ bus, db: db!, logger, config });
    return { stop };
  },
};
