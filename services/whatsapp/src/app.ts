import 'reflect-metadata';
import { Controller, Module, type Type } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { Collections, Consumers, decodeEvent, encodeToken, subjectFiltersFor, type ConsumerDefinition } from '@puente/contracts';
import { Outcomes, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { loadConfig, type ServiceDefinition, url } from '@puente/runtime';
import { OnJetStream, startJetStreamService } from '@puente/nest-jetstream';
import { CommandHandler } from './commands/handler.js';
import { SessionRateLimiter } from './commands/rateLimit.js';
import { reconcileSent, sweepUnknownSends } from './commands/reconcile.js';
import { handledBy, type ReadModel, type Replayable } from '@puente/projection';
import { whatsappGroup, whatsappRoutes, WhatsAppProjections } from './readModels.js';
import { CloudApiClient } from './providers/cloudApi.js';
import { InboxHubClient } from './providers/inboxhub.js';
import { FullSync, SYNC_STALE_MS, SyncBusyError, type SyncState } from './sync/fullSync.js';

export { WhatsAppProjections, evolveAll, whatsappGroup, whatsappRoutes, commandsProjection, contactsProjection, conversationsProjection, messagesProjection, sessionsProjection } from './readModels.js';
export type { CommandDoc, ContactDoc, ConversationDoc, MessageDoc, SessionDoc, InMemoryState } from './readModels.js';
export { InboxHubClient } from './providers/inboxhub.js';
export { CloudApiClient } from './providers/cloudApi.js';
export { MetaAppClient, type MetaSubscription } from './providers/metaApp.js';
export { ProviderError } from '@puente/runtime';
export { FullSync, SyncBusyError, type SyncState } from './sync/fullSync.js';

export const Config = z.object({
  INBOXHUB_API_URL: url(['https', 'http']).optional(),
  INBOXHUB_API_KEY: z.string().optional(),
  INBOXHUB_EMAIL: z.string().optional(),
  INBOXHUB_PASSWORD: z.string().optional(),
  INBOXHUB_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  INBOXHUB_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  INBOXHUB_SYNC_CHATS: z.coerce.number().int().min(0).max(10_000).default(20),
  INBOXHUB_SYNC_MESSAGES: z.coerce.number().int().min(0).max(10_000).default(50),
  INBOXHUB_SYNC_PAGE_SIZE: z.coerce.number().int().min(1).max(100).default(50),
  /** A running sync whose worker has not reported for this long is resumed by another. */
  INBOXHUB_SYNC_STALE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  WHATSAPP_ACCESS_TOKEN: z.string().optional(),
  WHATSAPP_GRAPH_URL: url(['https', 'http']).default('https://graph.facebook.com/v21.0'),
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
  WHATSAPP_SESSIONS: z.string().optional().transform((v) => v?.split(',').map((s) => s.trim()).filter(Boolean)),
});
export type WhatsAppConfig = z.infer<typeof Config>;

/** KV buckets the service keeps its own state in. */
export const Buckets = {
  /** Full-sync cursors and ownership, one key per session. */
  sync: 'whatsapp_sync',
  /** Send attempts (at most once), kept as long as `COMMANDS` keeps a command. */
  sendAttempts: 'whatsapp_send_attempts',
} as const;

export interface WhatsAppConsumers {
  projections: ConsumerDefinition;
  commands: ConsumerDefinition;
  syncTrigger: ConsumerDefinition;
  reconciler: ConsumerDefinition;
}

/** The read models' consumer: its durable name from libs/contracts, its subjects what the projections handle. */
const projectionsConsumer: ConsumerDefinition = { durable: Consumers.whatsappProjections.durable, stream: Consumers.whatsappProjections.stream, filterSubjects: subjectFiltersFor(handledBy(whatsappGroup)) };

export const DefaultConsumers: WhatsAppConsumers = { projections: projectionsConsumer, commands: Consumers.whatsappCommands, syncTrigger: Consumers.whatsappSyncTrigger, reconciler: Consumers.whatsappReconciler };

/**
 * The consumers for a set of sessions: the same definitions with filters narrowed to the sessions'
 * subject tokens (`evt.whatsapp.<entity>.<verb>.<session>`) and durable names suffixed with a hash of
 * the set, so instances serving different sessions never share (or fight over) a consumer.
 */
export function consumersFor(sessions: readonly string[] | undefined): WhatsAppConsumers {
  if (!sessions || sessions.length === 0) return DefaultConsumers;
  const suffix = createHash('sha256').update([...sessions].sort().join('\n')).digest('hex').slice(0, 10);
  const narrow = (c: ConsumerDefinition): ConsumerDefinition => ({
    durable: `${c.durable}-${suffix}`,
    stream: c.stream,
    filterSubjects: c.filterSubjects.flatMap((filter) => sessions.map((session) => {
      // Subjects end with the session: `evt.whatsapp.<entity>.<verb>.<session>`, `cmd.whatsapp.<verb>.<session>`.
      const tokens = filter.startsWith('cmd.') ? 4 : 5;
      const prefix = filter.split('.').slice(0, -1);
      return [...prefix, ...Array<string>(tokens - 1 - prefix.length).fill('*'), encodeToken(session)].join('.');
    })),
  });
  return { projections: narrow(DefaultConsumers.projections), commands: narrow(DefaultConsumers.commands), syncTrigger: narrow(DefaultConsumers.syncTrigger), reconciler: narrow(DefaultConsumers.reconciler) };
}

/** The WhatsApp read models as `puente replay whatsapp` rebuilds them: this configuration's consumer and sessions. */
export function whatsappReadModel(config: Pick<WhatsAppConfig, 'WHATSAPP_SESSIONS'>): ReadModel {
  const sessions = config.WHATSAPP_SESSIONS;
  return {
    name: 'whatsapp',
    group: whatsappGroup,
    consumer: consumersFor(sessions).projections,
    routes: whatsappRoutes,
    // Sessions are `_id` in wa_sessions, a `session` field elsewhere.
    scope: (collection) => (sessions ? { [collection === Collections.waSessions ? '_id' : 'session']: { $in: sessions } } : undefined),
  };
}

/** The read models this service owns that `puente replay` can rebuild. */
export const replayable: readonly Replayable[] = [{ name: 'whatsapp', readModel: (env) => whatsappReadModel(loadConfig(Config, env)) }];

/** The Inbox Hub client from configuration, or why there is none. */
export function inboxHubFrom(config: WhatsAppConfig): InboxHubClient | string {
  const missing = InboxHubClient.missing(config);
  if (missing) return missing;
  return new InboxHubClient({ url: config.INBOXHUB_API_URL!, apiKey: config.INBOXHUB_API_KEY!, email: config.INBOXHUB_EMAIL!, password: config.INBOXHUB_PASSWORD!, timeoutMs: config.INBOXHUB_TIMEOUT_MS, retries: config.INBOXHUB_RETRIES });
}

export async function openBuckets(bus: Bus): Promise<{ sync: KV; attempts: KV }> {
  const [sync, attempts] = await Promise.all([
    bus.kv(Buckets.sync, { history: 1 }),
    bus.kv(Buckets.sendAttempts, { history: 1, ttl: 48 * 3_600_000 }),
  ]);
  return { sync, attempts };
}

/** Everything the service runs, built from its configuration; `module()` is the Nest module of its consumers. */
export class WhatsAppApp {
  readonly projections: WhatsAppProjections;
  readonly commands: CommandHandler;
  readonly sync: FullSync | undefined;
  private readonly running = new Map<string, Promise<unknown>>();
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | undefined;

  constructor(private readonly deps: { bus: Bus; db: Db; logger: Logger; config: WhatsAppConfig; buckets: { sync: KV; attempts: KV } }) {
    const { bus, db, logger, config } = deps;
    this.projections = new WhatsAppProjections(db, bus, { writers: config.PROJECTION_WRITERS, cacheSize: config.PROJECTION_CACHE_SIZE });
    const inboxHub = inboxHubFrom(config);
    const cloud = config.WHATSAPP_ACCESS_TOKEN ? new CloudApiClient({ graphUrl: config.WHATSAPP_GRAPH_URL, accessToken: config.WHATSAPP_ACCESS_TOKEN, timeoutMs: config.WHATSAPP_TIMEOUT_MS }) : undefined;
    this.commands = new CommandHandler({
      bus, db, logger, attempts: deps.buckets.attempts, limiter: new SessionRateLimiter(config.WHATSAPP_SEND_RATE, config.WHATSAPP_SEND_QUEUE),
      inboxHub: typeof inboxHub === 'string' ? undefined : inboxHub, cloud,
      unavailable: { ...(typeof inboxHub === 'string' ? { inboxhub: inboxHub } : {}), ...(cloud ? {} : { 'cloud-api': 'Cloud API sending not configured: set WHATSAPP_ACCESS_TOKEN' }), evolution: 'sending through Evolution API is not supported yet', waha: 'sending through WAHA is not supported yet' },
    });
    this.sync = typeof inboxHub === 'string' ? undefined : new FullSync({ bus, kv: deps.buckets.sync, client: inboxHub, logger, limits: { chats: config.INBOXHUB_SYNC_CHATS, messagesPerChat: config.INBOXHUB_SYNC_MESSAGES, pageSize: config.INBOXHUB_SYNC_PAGE_SIZE }, staleAfterMs: config.INBOXHUB_SYNC_STALE_MS });
    if (typeof inboxHub === 'string') logger.info({ reason: inboxHub }, 'full sync and sending through Inbox Hub are off');
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
    await Promise.all([...bySession.values()].map(async (indexes) => {
      for (const i of indexes) {
        try {
          outcomes[i] = await this.commands.handle(decodeEvent(deliveries[i]!.data));
        } catch (error) {
          outcomes[i] = Outcomes.fromError(error);
        }
      }
    }));
    return outcomes;
  }

  /** A session that connects gets a full sync (Inbox Hub sessions, when the API is configured; not for old events). */
  async onSessionStatus(delivery: Delivery): Promise<void> {
    const event = decodeEvent(delivery.data);
    if (event.type !== 'whatsapp.session.status.v1' || event.data.status !== 'connected' || event.data.provider !== 'inboxhub') return;
    if (Date.now() - Date.parse(event.data.timestamp) > SYNC_STALE_MS * 60) return;
    // In the background: startSync logs its own failure.
    void this.startSync(event.data.session);
  }

  /** Starts (or joins) a background sync of a session. */
  startSync(session: string): Promise<unknown> | undefined {
    if (!this.sync || this.stopping) return undefined;
    const current = this.running.get(session);
    if (current) return current;
    const run = this.sync.run(session)
      .catch((error: unknown) => {
        if (error instanceof SyncBusyError) this.deps.logger.info({ session }, error.message);
        else this.deps.logger.error({ session, err: (error as Error).message }, 'full sync stopped');
      })
      .finally(() => this.running.delete(session));
    this.running.set(session, run);
    return run;
  }

  /** Resumes syncs whose worker died (their state says running, their heartbeat is old), of this instance's sessions. */
  async resumeStaleSyncs(): Promise<void> {
    if (!this.sync) return;
    // The stream's subject list, not `kv.keys()`: nats.js's key iterator can stop before the last key.
    const prefix = `$KV.${Buckets.sync}.`;
    const info = await this.deps.bus.jsm.streams.info(`KV_${Buckets.sync}`, { subjects_filter: `${prefix}sync.>` });
    for (const key of Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length))) {
      const entry = await this.deps.buckets.sync.get(key);
      if (!entry || entry.length === 0) continue;
      const state = JSON.parse(new TextDecoder().decode(entry.value)) as SyncState;
      const mine = !this.deps.config.WHATSAPP_SESSIONS || this.deps.config.WHATSAPP_SESSIONS.includes(state.session);
      if (mine && state.phase === 'running' && Date.now() - state.heartbeatAt >= this.sync.staleAfterMs) void this.startSync(state.session);
    }
  }

  /** Starts the periodic sweep of sends whose result was lost. */
  startReconciling(): void {
    const { db, bus, config, logger } = this.deps;
    this.sweeper = setInterval(() => {
      this.sweeping ??= sweepUnknownSends(db, bus, config.WHATSAPP_SESSIONS)
        .then((proven) => proven > 0 && logger.info({ proven }, 'sends whose result was lost are proven sent by the provider\'s reports'))
        .catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'reconciling lost sends failed; retrying on the next sweep'))
        .finally(() => (this.sweeping = undefined));
    }, config.WHATSAPP_RECONCILE_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    await this.sweeping;
    await Promise.race([Promise.all(this.running.values()), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  }

  /** The Nest module whose controllers are the service's JetStream consumers. */
  module(consumers: WhatsAppConsumers = DefaultConsumers): Type<unknown> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const app = this;
    @Controller()
    class WhatsAppConsumersController {
      @OnJetStream(consumers.projections, { batch: true })
      project(deliveries: Delivery[]): Promise<Outcome[]> {
        return app.projections.handler()(deliveries) as Promise<Outcome[]>;
      }

      // A short ack wait: a handler keeps its messages alive while it works, so only a dead instance's commands wait this long.
      @OnJetStream(consumers.commands, { batch: true, runner: { batchSize: 32, maxAttempts: 20, backoffMs: [1_000, 5_000, 30_000], ackWaitMs: Math.min(10_000, app.deps.config.WHATSAPP_ACK_WAIT_MS) } })
      command(deliveries: Delivery[]): Promise<Outcome[]> {
        return app.handleCommands(deliveries);
      }

      @OnJetStream(consumers.syncTrigger, { raw: true })
      sessionStatus(delivery: Delivery): Promise<void> {
        return app.onSessionStatus(delivery);
      }

      @OnJetStream(consumers.reconciler)
      async outgoing(event: Parameters<typeof reconcileSent>[0]): Promise<void> {
        await reconcileSent(event, app.deps.db, app.deps.bus);
      }
    }
    @Module({ controllers: [WhatsAppConsumersController] })
    class WhatsAppModule {}
    return WhatsAppModule;
  }
}

/** Builds and starts the service's consumers on a bus and database (the service's `start`, and tests); `WHATSAPP_SESSIONS` scopes them. */
export async function startWhatsApp(deps: { bus: Bus; db: Db; logger: Logger; config: WhatsAppConfig; consumers?: WhatsAppConsumers }): Promise<{ app: WhatsAppApp; stop: () => Promise<void> }> {
  const buckets = await openBuckets(deps.bus);
  const app = new WhatsAppApp({ ...deps, buckets });
  await app.projections.init();
  const { stop } = await startJetStreamService(app.module(deps.consumers ?? consumersFor(deps.config.WHATSAPP_SESSIONS)), { bus: deps.bus, service: 'whatsapp', logger: deps.logger, runner: { ackWaitMs: deps.config.WHATSAPP_ACK_WAIT_MS } });
  await app.resumeStaleSyncs();
  app.startReconciling();
  return {
    app,
    stop: async () => {
      await app.stop();
      await stop();
      // The checkpoint trails the batches by up to a quarter second: write the last one.
      await app.projections.close().catch((error: Error) => deps.logger.warn({ err: error.message }, 'could not write the last checkpoint'));
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
