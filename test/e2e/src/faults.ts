import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import { sampleBody, sampleSecrets, signSample } from '@puente/gateway';
import { CDC_FAULTS, runCdcFault, type CdcFault } from './cdcFaults.js';
import {
  freePort,
  portOpen,
  spawnService,
  startMongoWire,
  startNats,
  stopService,
  waitReady,
  type RunningServiceProcess,
} from '@puente/stack';

/**
 * The fault suite: signed webhooks through the whole stack (gateway, NATS JetStream, the whatsapp and
 * kissflow-sync projectors, the MongoDB-wire server), sent by a client that behaves like the real senders
 * (it retries anything but a 2xx with backoff), while one fault at a time strikes. Then, once the system
 * settles: every acknowledged delivery is in the read model exactly once, every document is at its
 * newest version, and nothing went to the DLQ. Loopback only; every phase is bounded in time.
 */
const WEBHOOK_FAULTS = ['nats-kill9', 'mongo-down-10s', 'projector-kill9', 'gateway-kill9'] as const;
type WebhookFault = (typeof WEBHOOK_FAULTS)[number];
/** Every fault, the webhook path's then the CDC path's (cdcFaults.ts). */
export const FAULTS = [...WEBHOOK_FAULTS, ...CDC_FAULTS] as const;
export type Fault = WebhookFault | CdcFault;

export interface FaultRow {
  fault: Fault;
  sent: number;
  acknowledged: number;
  inReadModel: number;
  duplicates: number;
  lost: number;
  /** From the strike until the struck component runs again and the gateway acknowledges a delivery sent after it. */
  recoverSeconds: number;
  deadLetters: number;
  /** When something is off: which chats or rows, for the investigation. */
  details?: string;
}

const root = fileURLToPath(new URL('../../../', import.meta.url));
/** The services run with NODE_ENV=development and no secrets set: the development values. */
const SECRETS = sampleSecrets();
const KISSFLOW_ROWS = 40;
const CHATS = 16;
const CONCURRENCY = 8;
/** A delivery still refused after this long counts as not acknowledged (real senders give up too). */
const GIVE_UP_MS = 90_000;
const SETTLE_MS = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The server itself, not the guard shell that `spawnServer` wraps it in. */
const serverPid = (guardPid: number, binary: string) =>
  Number(
    execFileSync('pgrep', ['-P', String(guardPid), '-f', binary], { encoding: 'utf8' })
      .trim()
      .split('\n')[0],
  );

interface Delivery {
  kind: 'kissflow' | 'inboxhub';
  /** Kissflow: the row and its version; Inbox Hub: the message id. */
  key: string;
  version: number;
  acknowledged: boolean;
}

/** One stack of its own (NATS, MongoDB wire, gateway, projectors, optionally realtime) that the faults strike and the soak loads. */
export class Stack {
  private constructor(
    private readonly dir: string,
    private readonly ports: {
      nats: number;
      natsMonitor: number;
      mongo: number;
      gateway: number;
      whatsapp: number;
      kissflow: number;
      realtime: number;
    },
    private readonly postgresUrl: string,
    private readonly database: string,
    readonly log: (line: string) => void,
  ) {}

  nats!: Awaited<ReturnType<typeof startNats>>;
  mongo!: Awaited<ReturnType<typeof startMongoWire>>;
  gateway!: RunningServiceProcess;
  whatsapp!: RunningServiceProcess;
  kissflow!: RunningServiceProcess;
  realtime?: RunningServiceProcess;
  private readonly sink = new Writable({ write: (_c, _e, done) => done() });

  /** Extra environment for every service (the soak bounds the projectors' caches). */
  private env: NodeJS.ProcessEnv = {};

  static async start(
    postgresUrl: string,
    log: (line: string) => void,
    options: { realtime?: boolean; env?: NodeJS.ProcessEnv } = {},
  ): Promise<Stack> {
    const ports = {
      nats: await freePort(),
      natsMonitor: await freePort(),
      mongo: await freePort(),
      gateway: await freePort(),
      whatsapp: await freePort(),
      kissflow: await freePort(),
      realtime: await freePort(),
    };
    const stack = new Stack(
      mkdtempSync(join(tmpdir(), 'puente-faults-')),
      ports,
      postgresUrl,
      `faults_${process.pid}_${Date.now().toString(36)}`,
      log,
    );
    stack.env = options.env ?? {};
    await stack.startNats();
    await stack.startMongo();
    stack.gateway = await stack.startService('gateway');
    stack.whatsapp = await stack.startService('whatsapp');
    stack.kissflow = await stack.startService('kissflow-sync');
    if (options.realtime) stack.realtime = await stack.startService('realtime');
    return stack;
  }

  get natsUrl(): string {
    return `nats://127.0.0.1:${this.ports.nats}`;
  }

  get mongoUrl(): string {
    return `mongodb://127.0.0.1:${this.ports.mongo}/puente_faults`;
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.ports.gateway}`;
  }

  get realtimeUrl(): string {
    return `ws://127.0.0.1:${this.ports.realtime}/ws`;
  }

  async startNats(): Promise<void> {
    this.nats = await startNats({
      dir: join(this.dir, 'nats'),
      port: this.ports.nats,
      monitorPort: this.ports.natsMonitor,
      log: this.log,
    });
  }

  /** Waits until NATS no longer listens: the kill really happened. */
  async natsGone(): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (await portOpen(this.ports.nats)) {
      if (Date.now() > deadline) throw new Error('nats-server still listens after kill -9');
      await sleep(50);
    }
  }

  async startMongo(): Promise<void> {
    this.mongo = await startMongoWire({
      dir: join(this.dir, 'mongo'),
      port: this.ports.mongo,
      postgresUrl: this.postgresUrl,
      database: this.database,
      log: this.log,
    });
  }

  async startService(name: 'gateway' | 'whatsapp' | 'kissflow-sync' | 'realtime'): Promise<RunningServiceProcess> {
    const port = {
      gateway: this.ports.gateway,
      whatsapp: this.ports.whatsapp,
      'kissflow-sync': this.ports.kissflow,
      realtime: this.ports.realtime,
    }[name];
    const service = spawnService(
      root,
      name,
      port,
      {
        ...process.env,
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        NATS_URL: this.natsUrl,
        MONGO_URL: this.mongoUrl,
        ...this.env,
        ...(name === 'gateway'
          ? { GATEWAY_PORT: String(port) }
          : name === 'realtime'
            ? { REALTIME_PORT: String(port) }
            : { HEALTH_PORT: String(port) }),
      },
      this.sink,
    );
    await waitReady(service, 60_000);
    return service;
  }

  async stop(): Promise<void> {
    for (const service of [this.gateway, this.whatsapp, this.kissflow, this.realtime])
      if (service) await stopService(service).catch(() => undefined);
    await this.mongo?.process.stop().catch(() => undefined);
    await this.nats?.process.stop().catch(() => undefined);
    const admin = new (await import('pg')).default.Client({ connectionString: `${this.postgresUrl}/postgres` });
    await admin
      .connect()
      .then(() => admin.query(`drop database if exists "${this.database}" with (force)`))
      .catch(() => undefined)
      .finally(() => admin.end().catch(() => undefined));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const FAULT_SECRETS = SECRETS;

/** Sends one delivery until it is acknowledged (2xx) or the sender gives up, with backoff like Meta's and Inbox Hub's. */
export async function deliver(
  gatewayUrl: string,
  request: { path: string; headers: Record<string, string>; body: string },
  onAck: (at: number) => void,
): Promise<boolean> {
  const deadline = Date.now() + GIVE_UP_MS;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      const res = await fetch(`${gatewayUrl}${request.path}`, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      if (res.ok) {
        onAck(Date.now());
        return true;
      }
    } catch {
      // Connection refused or reset, or no answer in time: the sender tries again.
    }
    await sleep(Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random()));
  }
  return false;
}

async function strike(stack: Stack, fault: WebhookFault): Promise<void> {
  switch (fault) {
    case 'nats-kill9':
      process.kill(serverPid(stack.nats.process.pid, 'nats-server'), 'SIGKILL');
      await stack.natsGone();
      await sleep(2_000);
      await stack.startNats();
      return;
    case 'mongo-down-10s':
      await stack.mongo.process.stop();
      await sleep(10_000);
      await stack.startMongo();
      return;
    case 'projector-kill9':
      stack.whatsapp.child.kill('SIGKILL');
      stack.kissflow.child.kill('SIGKILL');
      await Promise.all([stack.whatsapp.exited, stack.kissflow.exited]);
      [stack.whatsapp, stack.kissflow] = await Promise.all([
        stack.startService('whatsapp'),
        stack.startService('kissflow-sync'),
      ]);
      return;
    case 'gateway-kill9':
      stack.gateway.child.kill('SIGKILL');
      await stack.gateway.exited;
      await sleep(1_000);
      stack.gateway = await stack.startService('gateway');
      return;
  }
}

/** One fault: load before, during and after it; then the checks. */
async function runFault(stack: Stack, fault: WebhookFault, deliveries: number): Promise<FaultRow> {
  const dataset = `DS_Faults_${fault.replace(/-/g, '_')}_${Date.now().toString(36)}`;
  const session = `faults-${fault}-${Date.now().toString(36)}`;
  const sent: Delivery[] = [];
  const versions = new Map<string, number>();
  let struck = 0;
  let firstAckAfter = 0;
  let strikeEnded = 0;
  let strikeDone: Promise<void> | undefined;
  let next = 0;
  const base = Date.UTC(2026, 0, 1);
  const worker = async () => {
    for (let i = next++; i < deliveries; i = next++) {
      if (i === Math.floor(deliveries / 3) && !strikeDone) {
        struck = Date.now();
        stack.log(`  ${fault}: striking after ${i} deliveries`);
        strikeDone = strike(stack, fault).then(() => void (strikeEnded = Date.now()));
      }
      let delivery: Delivery;
      let request: { path: string; headers: Record<string, string>; body: string };
      if (i % 2 === 0) {
        const row = `R${(i / 2) % KISSFLOW_ROWS}`;
        const version = (versions.get(row) ?? 0) + 1;
        versions.set(row, version);
        delivery = { kind: 'kissflow', key: row, version, acknowledged: false };
        request = signSample(
          'kissflow',
          { _id: row, Name: `fila ${row}`, version, _modified_at: new Date(base + version * 1000).toISOString() },
          SECRETS,
          { params: { dataset } },
        );
      } else {
        const body = sampleBody('inboxhub', i) as {
          sessionId: string;
          data: { messageId: string; chatId: string; from: string };
        };
        const chat = `3461299${String(i % CHATS).padStart(4, '0')}@s.whatsapp.net`;
        body.sessionId = session;
        body.data.messageId = `FAULT${i}X${Date.now().toString(36).toUpperCase()}`;
        body.data.chatId = chat;
        body.data.from = chat;
        delivery = { kind: 'inboxhub', key: body.data.messageId, version: 0, acknowledged: false };
        request = signSample('inboxhub', body, SECRETS);
      }
      sent.push(delivery);
      const started = Date.now();
      delivery.acknowledged = await deliver(stack.gatewayUrl, request, (at) => {
        if (struck && started >= struck && !firstAckAfter) firstAckAfter = at;
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await strikeDone;
  const acked = sent.filter((d) => d.acknowledged);

  // Settle, then check the read models.
  const mongo = await MongoClient.connect(stack.mongoUrl, { serverSelectionTimeoutMS: 10_000 });
  try {
    const db = mongo.db();
    const messages = db.collection<{ messageId: string }>('wa_messages');
    const conversations = db.collection<{ unreadCount: number; chatId: string }>('wa_conversations');
    const records = db.collection<{ rowId: string; fields: { version?: number } }>('kissflow_records');
    const newest = new Map<string, number>();
    for (const d of acked.filter((x) => x.kind === 'kissflow'))
      newest.set(d.key, Math.max(newest.get(d.key) ?? 0, d.version));
    const ackedMessages = acked.filter((d) => d.kind === 'inboxhub').map((d) => d.key);
    const deadline = Date.now() + SETTLE_MS;
    let view = { present: 0, duplicates: 0, stale: 0 };
    for (;;) {
      const stored = await messages.find({ session } as never, { projection: { messageId: 1 } }).toArray();
      const counts = new Map<string, number>();
      for (const m of stored) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
      const rows = new Map(
        (await records.find({ dataset } as never).toArray()).map((r) => [r.rowId, r.fields.version ?? 0]),
      );
      // A message applied twice would count twice in its chat's unread count.
      const unread = (await conversations.find({ session } as never).toArray()).reduce(
        (sum, c) => sum + (c.unreadCount ?? 0),
        0,
      );
      const presentMessages = ackedMessages.filter((id) => counts.has(id)).length;
      const presentRows = [...newest].filter(([row, version]) => (rows.get(row) ?? 0) >= version).length;
      const stale = [...newest].filter(([row, version]) => (rows.get(row) ?? 0) < version).length;
      const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0) + Math.max(0, unread - counts.size);
      view = {
        present:
          presentMessages + acked.filter((d) => d.kind === 'kissflow' && (rows.get(d.key) ?? 0) >= d.version).length,
        duplicates,
        stale,
      };
      if ((presentMessages === ackedMessages.length && presentRows === newest.size) || Date.now() > deadline) break;
      await sleep(500);
    }
    let details: string | undefined;
    if (view.duplicates > 0 || view.stale > 0 || view.present < acked.length) {
      const perChat = await messages
        .aggregate<{ _id: string; n: number }>([
          { $match: { session } },
          { $group: { _id: '$chatId', n: { $sum: 1 } } },
        ])
        .toArray();
      const chats = await conversations.find({ session } as never).toArray();
      details = chats
        .filter((c) => c.unreadCount !== perChat.find((p) => p._id === c.chatId)?.n)
        .map((c) => `${c.chatId}: unread ${c.unreadCount}, messages ${perChat.find((p) => p._id === c.chatId)?.n ?? 0}`)
        .join('; ');
    }
    const bus = await Bus.connect({ servers: stack.natsUrl, name: 'faults-check' });
    if (details && process.env.FAULTS_DIAGNOSE) {
      const { decodeEvent, encodeToken } = await import('@puente/contracts');
      const consumer = await bus.js.consumers.get(StreamNames.EVENTS, {
        filterSubjects: [`evt.whatsapp.message.received.${encodeToken(session)}`],
      });
      const seen = new Map<string, number[]>();
      const info = await bus.jsm.streams.info(StreamNames.EVENTS, {
        subjects_filter: `evt.whatsapp.message.received.${encodeToken(session)}`,
      });
      const total = info.state.subjects?.[`evt.whatsapp.message.received.${encodeToken(session)}`] ?? 0;
      let read = 0;
      while (read < total) {
        for await (const m of await consumer.fetch({ max_messages: 500, expires: 2_000 })) {
          read++;
          const e = decodeEvent(m.data) as { data: { messageId: string } };
          seen.set(e.data.messageId, [...(seen.get(e.data.messageId) ?? []), m.seq]);
        }
      }
      const docs = (await messages.find({ session } as never).toArray()) as unknown as {
        messageId: string;
        firstContentAt: number;
        _position: number;
      }[];
      const twice = [...seen].filter(([, seqs]) => seqs.length > 1);
      const odd = docs.filter((d) => !(seen.get(d.messageId) ?? []).includes(d.firstContentAt));
      details += `\nEVENTS: ${total} received events for ${seen.size} messages, ${twice.length} stored twice (${twice
        .slice(0, 5)
        .map(([id, q]) => `${id}@${q.join(',')}`)
        .join(' ')}); stream ${info.state.first_seq}..${info.state.last_seq}`;
      details += `\nmessage docs whose firstContentAt is not one of their event positions: ${odd.length} (${odd
        .slice(0, 5)
        .map((d) => `${d.messageId} first ${d.firstContentAt} at ${(seen.get(d.messageId) ?? []).join(',')}`)
        .join('; ')})`;
      const convs = (await conversations.find({ session } as never).toArray()) as unknown as {
        chatId: string;
        _position: number;
      }[];
      details += `\nconversation positions: ${convs.map((c) => c._position).join(',')}`;
    }
    const deadLetters = (await bus.jsm.streams.info(StreamNames.DLQ)).state.messages;
    await bus.close();
    return {
      fault,
      sent: sent.length,
      acknowledged: acked.length,
      inReadModel: view.present,
      duplicates: view.duplicates,
      lost: acked.length - view.present,
      recoverSeconds: firstAckAfter ? (Math.max(firstAckAfter, strikeEnded) - struck) / 1000 : Number.NaN,
      deadLetters,
      ...(details ? { details } : {}),
    };
  } finally {
    await mongo.close();
  }
}

/** Runs the faults in turn on one stack of their own; `postgresUrl` is a PostgreSQL server for FerretDB. */
export async function runFaults(options: {
  deliveries: number;
  faults?: readonly Fault[];
  postgresUrl: string;
  log?: (line: string) => void;
}): Promise<FaultRow[]> {
  const log = options.log ?? (() => undefined);
  const stack = await Stack.start(options.postgresUrl, log);
  const rows: FaultRow[] = [];
  try {
    for (const fault of options.faults ?? FAULTS) {
      log(`fault ${fault}: ${options.deliveries} deliveries`);
      rows.push(
        (CDC_FAULTS as readonly string[]).includes(fault)
          ? await runCdcFault(
              { natsUrl: stack.natsUrl, mongoUrl: stack.mongoUrl, log },
              fault as CdcFault,
              options.deliveries,
            )
          : await runFault(stack, fault as WebhookFault, options.deliveries),
      );
    }
  } finally {
    if (process.env.FAULTS_KEEP_STACK) log(`kept for inspection: NATS ${stack.natsUrl}, MongoDB ${stack.mongoUrl}`);
    else await stack.stop();
  }
  return rows;
}

export function faultTable(rows: FaultRow[]): string {
  const header = [
    'fault',
    'sent',
    'acknowledged',
    'in read model',
    'duplicates',
    'lost',
    'recovered in',
    'dead letters',
  ];
  const lines = rows.map((r) =>
    [
      r.fault,
      r.sent,
      r.acknowledged,
      r.inReadModel,
      r.duplicates,
      r.lost,
      Number.isNaN(r.recoverSeconds) ? 'n/a' : `${r.recoverSeconds.toFixed(1)} s`,
      r.deadLetters,
    ].map(String),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const details = rows.filter((r) => r.details).map((r) => `${r.fault}: ${r.details}`);
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row), ...details].join('\n');
}
