import { readFileSync } from 'node:fs';
import { metrics } from '@opentelemetry/api';
import type { Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Db } from 'mongodb';
import type { Subscription as NatsSubscription } from 'nats';
import { WebSocketServer } from 'ws';
import {
  channelAllowed,
  ErrorCodes,
  PageOrder,
  RealtimeSubjects,
  ResyncNotice,
  type ChannelRouteDescriptor,
} from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { MediaStore } from '@puente/media';
import {
  createHttpServer,
  devDashboardToken,
  DevSecrets,
  listen,
  RouteTable,
  TokenRevocations,
  type Check,
  type Logger,
  type RouteHandler,
  type ServiceDefinition,
} from '@puente/runtime';
import { Config, type RealtimeConfig } from './config.js';
import { Connection, type ConnectionLimits, type ServerContext } from './connection.js';
import { dashboardHtml } from './dashboard.js';
import { ChangeFeed } from './feed.js';
import { commandForwardingRoutes } from './commands/commandForwarding.js';
import { inboxRoutes } from './inbox/inboxRoutes.js';
import { mediaRoutes } from './media/mediaRoutes.js';
import { uploadRoute } from './media/uploadRoute.js';
import { BadPageError, readPage } from './pages.js';
import { readerClaims } from './httpToken.js';
import { refused } from './refused.js';
import { searchRoute } from './search/searchRoute.js';
import { viewFor } from './sendersOnly.js';
import { router } from './routes.js';

/** What `build` needs: the bus, the read models' database, the token secrets and the configuration. */
export interface RealtimeOptions {
  bus: Bus;
  db: Db;
  logger: Logger;
  checks: Record<string, Check>;
  secrets: readonly string[];
  config: RealtimeConfig;
  /** The read models served, by channel route (default: every read model's, `ReadModelRoutes`). */
  readModels?: readonly ChannelRouteDescriptor[];
  /** Where stored media is read (default: the media store in `db`, read only). */
  media?: MediaStore;
  /** Where inbox uploads are kept (default: the media store in `db`, with the upload cap and budget of the config). */
  uploads?: MediaStore;
  /** The token revocation list (default: the bus's `puente_token_revocations` bucket, answers cached 2 s). */
  revocations?: TokenRevocations;
}

export interface RealtimeServer {
  http: Server;
  feed: ChangeFeed;
  stats: ServerContext['stats'] & { notices: () => number };
  /** Starts reading `CHANGES` and listening for resyncs (before the server listens). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Drops every WebSocket connection (as a network failure would); the server stays up. */
  dropAll(): void;
}

const clientFile = (() => {
  let cached: string | undefined;
  return () => (cached ??= readFileSync(createRequire(import.meta.url).resolve('@puente/realtime-client'), 'utf8'));
})();

const NO_STORE = { 'cache-control': 'no-store' };

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...NO_STORE });
  res.end(text);
}

/** The media store as realtime sees it: it only reads, so its limits refuse every write. */
function readOnlyMediaStore(db: Db): MediaStore {
  return new MediaStore(db, { maxItemBytes: 0, budgetBytes: 0 });
}

/**
 * Builds the realtime server (not listening): `/ws` (the protocol of DESIGN.md "Realtime"),
 * `GET /api/<channel>?cursor=&order=` (the same read models, paged, same tokens), `GET /api/search`
 * (a session's conversations and contacts by name or number), `GET /` (the live
 * dashboard) and `/client.js` (the browser client it runs on), `GET /inbox` (the WhatsApp inbox) and its
 * assets, `/media/<session>/<message id>` (stored media, and signed links to it), `POST /media/<session>`
 * (an inbox attachment into the media store), `/stats`, and the health endpoints.
 */
export function build(options: RealtimeOptions): RealtimeServer {
  const { bus, db, logger, config } = options;
  const feed = new ChangeFeed(bus, logger);
  const limits: ConnectionLimits = {
    maxSubscriptions: config.REALTIME_MAX_SUBSCRIPTIONS,
    maxBufferedBytes: config.REALTIME_MAX_BUFFERED_BYTES,
    pageSize: config.REALTIME_PAGE_SIZE,
    maxPending: 50_000,
  };
  const stats = { connections: 0, subscriptions: 0, slowClosed: 0 };
  const routeOf = router(options.readModels);
  const revocations = options.revocations ?? new TokenRevocations(bus);
  const context: ServerContext = { db, feed, logger, secrets: options.secrets, revocations, limits, stats, routeOf };
  const connections = new Set<Connection>();

  const page =
    (html: string | (() => string), contentType: string): RouteHandler =>
    (_req, res) => {
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache' });
      res.end(typeof html === 'string' ? html : html());
    };
  const dashboard = page(dashboardHtml, 'text/html; charset=utf-8');
  const routes = new RouteTable(
    [
      { method: 'GET', path: '/', handler: dashboard },
      { method: 'GET', path: '/index.html', handler: dashboard },
      { method: 'GET', path: '/client.js', handler: page(clientFile, 'text/javascript; charset=utf-8') },
      {
        method: 'GET',
        path: '/stats',
        handler: (_req, res) => {
          const memory = process.memoryUsage();
          json(res, 200, {
            memory: {
              rss: memory.rss,
              heapUsed: memory.heapUsed,
              heapTotal: memory.heapTotal,
              external: memory.external,
              arrayBuffers: memory.arrayBuffers,
            },
            connections: stats.connections,
            subscriptions: stats.subscriptions,
            slowClosed: stats.slowClosed,
            channels: [...feed.channels].length,
            notices: feed.stats.notices,
            epoch: feed.epoch,
            position: feed.lastSeq,
          });
        },
      },
      ...commandForwardingRoutes({
        gatewayUrl: config.REALTIME_GATEWAY_URL,
        timeoutMs: config.REALTIME_GATEWAY_TIMEOUT_MS,
        logger,
      }),
      ...mediaRoutes({
        db,
        media: options.media ?? readOnlyMediaStore(db),
        secrets: options.secrets,
        revocations,
        linkTtlSeconds: config.REALTIME_MEDIA_LINK_TTL_S,
        logger,
      }),
      uploadRoute({
        store:
          options.uploads ??
          new MediaStore(db, {
            maxItemBytes: config.REALTIME_UPLOAD_MAX_BYTES,
            budgetBytes: config.REALTIME_MEDIA_BUDGET_BYTES,
          }),
        secrets: options.secrets,
        revocations,
        maxBytes: config.REALTIME_UPLOAD_MAX_BYTES,
      }),
      ...inboxRoutes(),
      searchRoute({ db, secrets: options.secrets, revocations }),
      {
        method: 'GET',
        path: '/api/*channel',
        handler: async (req, res, { params }) => {
          const channel = params.channel!;
          const url = new URL(req.url ?? '/', 'http://realtime');
          const claims = await readerClaims(req, url, options.secrets, revocations);
          if (!claims.channels.some((pattern) => channelAllowed(pattern, channel)))
            throw refused(ErrorCodes.forbidden, 'the token does not allow this channel', { channel });
          const route = routeOf(channel);
          if (!route) throw refused(ErrorCodes.unknownChannel, 'no such channel', { channel });
          const order = PageOrder.optional().safeParse(url.searchParams.get('order') ?? undefined);
          if (!order.success) throw refused(ErrorCodes.badRequest, 'order: id or newest');
          try {
            const position = feed.lastSeq;
            const found = await readPage(
              db,
              route,
              url.searchParams.get('cursor') ?? undefined,
              config.REALTIME_PAGE_SIZE,
              order.data,
            );
            const view = viewFor(route.sendersOnly, claims);
            json(res, 200, {
              channel,
              items: found.items.map(view),
              epoch: feed.epoch,
              position,
              ...(found.next ? { next: found.next } : {}),
            });
          } catch (error) {
            if (!(error instanceof BadPageError)) throw error;
            throw refused(ErrorCodes.badRequest, error.message);
          }
        },
      },
    ],
    { headForGet: true, problemHeaders: NO_STORE },
  );

  const http = createHttpServer({
    checks: options.checks,
    onError: (error, requestId) => logger.error({ err: error, requestId }, 'request failed'),
    route: routes.route,
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.REALTIME_MAX_FRAME_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
  });
  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://realtime');
    if (url.pathname !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new Connection(ws, context);
      connections.add(connection);
      ws.on('close', () => connections.delete(connection));
      const token = url.searchParams.get('token');
      if (token) void connection.authenticate(token);
    });
  });

  let ticker: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let resyncs: NatsSubscription | undefined;
  let unwatch: (() => void) | undefined;
  return {
    http,
    feed,
    stats: Object.assign(stats, { notices: () => feed.stats.notices }),
    async start() {
      await feed.start();
      // OpenTelemetry instruments: exported by whatever meter provider the process configures.
      const meter = metrics.getMeter('puente-realtime');
      meter
        .createObservableGauge('puente.realtime.connections', { description: 'open WebSocket connections' })
        .addCallback((r) => r.observe(stats.connections));
      meter
        .createObservableGauge('puente.realtime.subscriptions', {
          description: 'channel subscriptions across connections',
        })
        .addCallback((r) => r.observe(stats.subscriptions));
      meter
        .createObservableCounter('puente.realtime.slow_consumers_closed', {
          description: 'connections closed because their send buffer was full',
        })
        .addCallback((r) => r.observe(stats.slowClosed));
      resyncs = bus.nc.subscribe(RealtimeSubjects.resync, {
        callback: (error, msg) => {
          if (error) return;
          let notice: ResyncNotice;
          try {
            notice = ResyncNotice.parse(msg.json());
          } catch {
            return;
          }
          for (const hub of feed.channels) {
            const collection = routeOf(hub.channel)?.collection;
            const wanted =
              (collection !== undefined && notice.collections?.includes(collection)) ||
              notice.channels?.some((pattern) => channelAllowed(pattern, hub.channel));
            if (!wanted) continue;
            hub.revs.clear();
            for (const connection of connections) connection.resync(hub.channel);
          }
        },
      });
      // A token revoked while its WebSocket is open is closed at once, not at its next connect.
      unwatch = await revocations.watch((covers) => {
        for (const connection of connections) connection.revokeIf(covers);
      });
      ticker = setInterval(() => {
        const now = Date.now();
        for (const connection of connections) connection.tick(now, config.REALTIME_AUTH_TIMEOUT_MS);
      }, 1_000).unref();
      heartbeat = setInterval(() => {
        for (const connection of connections) {
          if (!connection.alive) {
            connection.socket.terminate();
            continue;
          }
          connection.alive = false;
          connection.socket.ping();
        }
      }, config.REALTIME_HEARTBEAT_MS).unref();
    },
    dropAll() {
      for (const connection of connections) connection.socket.terminate();
    },
    async stop() {
      clearInterval(ticker);
      clearInterval(heartbeat);
      resyncs?.unsubscribe();
      unwatch?.();
      for (const connection of connections) connection.close(1001, 'server going away');
      await feed.stop();
    },
  };
}

export const service: ServiceDefinition<typeof Config, 'REALTIME_JWT_SECRET'> = {
  name: 'realtime',
  config: Config,
  secrets: ['REALTIME_JWT_SECRET'],
  mongo: true,
  async start({ config, logger, checks, bus, db, secrets }) {
    const server = build({ bus, db: db!, logger, checks, secrets: secrets.REALTIME_JWT_SECRET, config });
    await server.start();
    const http = await listen(server.http, config.REALTIME_PORT);
    // With the development secret, the dashboard link carries the development token.
    const dev =
      config.NODE_ENV !== 'production' && secrets.REALTIME_JWT_SECRET.includes(DevSecrets.REALTIME_JWT_SECRET);
    const fragment = dev ? `#token=${devDashboardToken(DevSecrets.REALTIME_JWT_SECRET)}` : '';
    return {
      urls: {
        dashboard: `http://127.0.0.1:${http.port}/${fragment}`,
        inbox: `http://127.0.0.1:${http.port}/inbox${fragment}`,
        websocket: `ws://127.0.0.1:${http.port}/ws`,
      },
      stop: async () => {
        await server.stop();
        await http.close();
      },
    };
  },
};
