import { MongoClient, type AnyBulkWriteOperation, type Db } from 'mongodb';
import { AckPolicy } from 'nats';
import {
  Collections,
  createEvent,
  encodeToken,
  subjectOf,
  type DomainEvent,
  type EventData,
  type EventType,
} from '@puente/contracts';
import { Bus, ConsumerRunner } from '@puente/bus';
import { evolveDoc, keysOf, type ProjectedDoc, type Projection } from '@puente/projection';
import {
  commandsProjection,
  contactsProjection,
  conversationsProjection,
  messagesProjection,
  sessionsProjection,
  WhatsAppProjections,
  type MessageDoc,
} from '@puente/whatsapp';
import type { BenchEnv } from './bus.js';
import { machine, metric, type BenchResult } from './result.js';

const EVENTS = Number(process.env.BENCH_WA_EVENTS ?? 200_000);
const CHATS = 2_000;
const SESSIONS = 4;
const BATCH = 256;

/** A deterministic pseudo-random sequence (the same workload every run). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/**
 * The workload: 60 % messages received, 30 % delivery statuses (of messages sent or received before,
 * some repeated, some ahead of their message), 10 % other (messages sent, contact updates, archive
 * and unarchive, session status), over 2,000 chats in four sessions, times moving forward.
 */
export function whatsappWorkload(ns: string, n = EVENTS): DomainEvent[] {
  const next = random(42);
  const sessions = Array.from({ length: SESSIONS }, (_, i) => `${ns}-s${i}`);
  const chats = Array.from({ length: CHATS }, (_, i) => ({
    session: sessions[i % SESSIONS]!,
    jid: `5491100${String(100_000 + i)}@s.whatsapp.net`,
  }));
  const sent: { session: string; id: string; chat: string }[] = [];
  const base = Date.UTC(2026, 10, 1);
  const events: DomainEvent[] = [];
  const ev = <T extends EventType>(type: T, data: EventData<T>) =>
    events.push(
      createEvent(type, data, { source: 'urn:puente:bench', time: new Date(base).toISOString() }) as DomainEvent,
    );
  const texts = ['Hola, ¿cómo estás? 👋', 'Su pedido #8812 está listo ✅', 'Gracias 🙏', '¿Me envías la factura? 🧾'];
  for (let i = 0; i < n; i++) {
    const at = new Date(base + i * 50).toISOString();
    const chat = chats[Math.floor(next() * CHATS)]!;
    const roll = next();
    if (roll < 0.6) {
      const id = `IN${i.toString(36).toUpperCase()}`;
      ev('whatsapp.message.received.v1', {
        session: chat.session,
        provider: 'inboxhub',
        messageId: id,
        chatId: chat.jid,
        from: chat.jid,
        fromMe: false,
        pushName: `Cliente ${chat.jid.slice(7, 12)}`,
        type: 'text',
        text: texts[i % texts.length]!,
        timestamp: at,
      });
      sent.push({ session: chat.session, id, chat: chat.jid });
    } else if (roll < 0.9 && sent.length > 0) {
      const target = sent[Math.floor(next() * sent.length)]!;
      const status = (['sent', 'delivered', 'read'] as const)[Math.floor(next() * 3)]!;
      ev('whatsapp.message.status.v1', {
        session: target.session,
        provider: 'inboxhub',
        messageId: target.id,
        chatId: target.chat,
        status,
        timestamp: at,
      });
    } else if (roll < 0.95) {
      const id = `OUT${i.toString(36).toUpperCase()}`;
      ev('whatsapp.message.sent.v1', {
        session: chat.session,
        provider: 'inboxhub',
        messageId: id,
        chatId: chat.jid,
        fromMe: true,
        type: 'text',
        text: 'Gracias por escribirnos',
        timestamp: at,
      });
      sent.push({ session: chat.session, id, chat: chat.jid });
    } else if (roll < 0.97) {
      ev('whatsapp.contact.updated.v1', {
        session: chat.session,
        provider: 'inboxhub',
        jid: chat.jid,
        name: `Contacto ${i % 977}`,
        timestamp: at,
      });
    } else if (roll < 0.99) {
      ev(next() < 0.5 ? 'whatsapp.chat.archived.v1' : 'whatsapp.chat.unarchived.v1', {
        session: chat.session,
        provider: 'inboxhub',
        chatId: chat.jid,
        timestamp: at,
      });
    } else {
      ev('whatsapp.session.status.v1', {
        session: chat.session,
        provider: 'inboxhub',
        status: next() < 0.8 ? 'connected' : 'disconnected',
        timestamp: at,
      });
    }
  }
  return events;
}

/**
 * The writes the raw baseline makes: for each event, each document it touches as it stands after
 * that event (insert the first time, replace by `_id` after), computed with the same pure projections.
 */
function perEventWrites(
  events: readonly DomainEvent[],
): { collection: string; key: string; doc: Record<string, unknown>; first: boolean }[][] {
  const messageDocs = new Map<string, MessageDoc | undefined>();
  const facts = {
    firstContentAt: (key: string) => messageDocs.get(key)?.firstContentAt,
    message: (key: string) => messageDocs.get(key),
  };
  const projections = [
    messagesProjection(),
    conversationsProjection(facts),
    sessionsProjection(facts),
    contactsProjection(),
    commandsProjection(),
  ] as unknown as Projection<ProjectedDoc>[];
  const state = projections.map(() => new Map<string, ProjectedDoc>());
  return events.map((event, i) => {
    const position = i + 1;
    const writes: { collection: string; key: string; doc: Record<string, unknown>; first: boolean }[] = [];
    projections.forEach((projection, p) => {
      for (const key of keysOf(projection, event)) {
        const before = state[p]!.get(key) ?? null;
        const after = evolveDoc(projection, before, event, { key, position });
        if (p === 0) messageDocs.set(key, (after as MessageDoc | null) ?? undefined);
        if (!after || after === before) continue;
        state[p]!.set(key, after);
        writes.push({
          collection: projection.collection,
          key,
          doc: { ...after, _id: key, _position: position },
          first: before === null,
        });
      }
    });
    return writes;
  });
}

async function rawBulkWrite(db: Db, writes: ReturnType<typeof perEventWrites>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < writes.length; i += BATCH) {
    const byCollection = new Map<string, AnyBulkWriteOperation<{ _id: string }>[]>();
    for (const w of writes.slice(i, i + BATCH).flat()) {
      const ops = byCollection.get(w.collection) ?? [];
      ops.push(
        w.first
          ? { insertOne: { document: w.doc as { _id: string } } }
          : { replaceOne: { filter: { _id: w.key }, replacement: w.doc as { _id: string } } },
      );
      byCollection.set(w.collection, ops);
    }
    await Promise.all(
      [...byCollection].map(([name, ops]) => db.collection<{ _id: string }>(name).bulkWrite(ops, { ordered: false })),
    );
  }
  return writes.length / ((performance.now() - started) / 1000);
}

async function rawRead(bus: Bus, filters: string[], n: number): Promise<number> {
  const name = `bench-wa-raw-${Math.random().toString(36).slice(2, 8)}`;
  await bus.jsm.consumers.add('EVENTS', {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    filter_subjects: filters,
    max_ack_pending: 4 * BATCH,
  });
  const started = performance.now();
  const messages = await (await bus.js.consumers.get('EVENTS', name)).consume({ max_messages: BATCH });
  let count = 0;
  for await (const msg of messages) {
    msg.ack();
    if (++count === n) break;
  }
  const rate = n / ((performance.now() - started) / 1000);
  messages.stop();
  await bus.jsm.consumers.delete('EVENTS', name).catch(() => undefined);
  return rate;
}

async function projectionReplay(bus: Bus, db: Db, filters: string[], n: number): Promise<number> {
  // One runner applies the replay: the service's default (`PROJECTION_WRITERS=exclusive`).
  const projections = new WhatsAppProjections(db, bus, { writers: 'exclusive' });
  await projections.init();
  const handler = projections.handler();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let applied = 0;
  const runner = new ConsumerRunner({
    bus,
    redrive: false,
    batchSize: BATCH,
    consumer: {
      durable: `bench-wa-replay-${Math.random().toString(36).slice(2, 8)}`,
      stream: 'EVENTS',
      filterSubjects: filters,
    },
    handle: async (deliveries) => {
      const outcomes = await handler(deliveries);
      applied += outcomes.filter((o) => o.kind === 'ack').length;
      if (applied >= n) done();
      return outcomes;
    },
  });
  const started = performance.now();
  await runner.start();
  await finished;
  const rate = n / ((performance.now() - started) / 1000);
  await runner.stop();
  return rate;
}

/** `npm run bench -- whatsapp`: replaying WhatsApp events into empty read models against raw reads and raw writes. */
export async function runWhatsAppBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `bwa${Math.random().toString(36).slice(2, 8)}`;
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-whatsapp' });
  const client = await MongoClient.connect(env.mongoUrl, { maxPoolSize: 20 });
  const rawDb = client.db(`${ns}_raw`);
  const replayDb = client.db(`${ns}_replay`);
  try {
    await bus.ensureStreams();
    const events = whatsappWorkload(ns);
    const filters = Array.from({ length: SESSIONS }, (_, i) => `evt.whatsapp.*.*.${encodeToken(`${ns}-s${i}`)}`);
    await bus
      .pipeline(256)
      .publishAll(events.map((e) => ({ subject: subjectOf(e), payload: e, options: { msgId: e.id } })));
    env.log(`published ${events.length} WhatsApp events (${CHATS} chats, ${SESSIONS} sessions)`);
    const read = await rawRead(bus, filters, events.length);
    env.log(`raw read: ${Math.round(read)} events/s`);
    const writes = perEventWrites(events);
    const write = await rawBulkWrite(rawDb, writes);
    env.log(
      `raw bulkWrite of the same per-event writes (${writes.flat().length} writes): ${Math.round(write)} events/s`,
    );
    const replay = await projectionReplay(bus, replayDb, filters, events.length);
    const messages = await replayDb.collection(Collections.waMessages).countDocuments();
    env.log(`replay into empty read models: ${Math.round(replay)} events/s (${messages} message documents)`);
    return {
      name: 'whatsapp',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({
          metric: 'whatsapp_replay_rate',
          value: replay,
          unit: 'events/s',
          baseline: `lower of a raw read of the same stream (${Math.round(read)}/s) and a raw driver bulkWrite of the same per-event writes into the same server (${Math.round(write)}/s); ${events.length} events`,
          baselineValue: Math.min(read, write),
          target: 0.5,
        }),
      ],
    };
  } finally {
    for (let i = 0; i < SESSIONS; i++)
      await bus.jsm.streams
        .purge('EVENTS', { filter: `evt.whatsapp.*.*.${encodeToken(`${ns}-s${i}`)}` })
        .catch(() => undefined);
    await rawDb.dropDatabase().catch(() => undefined);
    await replayDb.dropDatabase().catch(() => undefined);
    await client.close();
    await bus.close();
  }
}
