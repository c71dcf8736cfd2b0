import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { Channels, Collections, createEvent, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import {
  ensureChromium,
  freePort,
  spawnService,
  stopService,
  waitReady,
  type RunningServiceProcess,
} from '@puente/stack';
import { sampleBody, signSample } from '@puente/gateway';
import { startTestGateway, TEST_SAMPLE_SECRETS } from '@puente/gateway/testing';
import { Config as WhatsAppConfig, startWhatsApp } from '@puente/whatsapp';
import { verifyToken } from '@puente/realtime';
import { startTestRealtime, TestSocket, TEST_REALTIME_SECRET, type Frame } from '@puente/realtime/testing';
import { runCli } from './cli.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const secrets = TEST_SAMPLE_SECRETS;

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  rt = await startTestRealtime(bus, db);
});
after(async () => {
  await rt.close();
  await database.drop();
  await bus.close();
});

describe('realtime end to end', () => {
  test('puente token mints a token the realtime server accepts, with the channels and lifetime asked for', async () => {
    const env = { ...process.env, REALTIME_JWT_SECRET: 'cli-secret-new,cli-secret-old' };
    const run = (args: string[]) => runCli(args, env);
    const minted = await run(['token', '--channels', 'whatsapp.>,kissflow.DS_A', '--ttl', '10m']);
    assert.equal(minted.code, 0, minted.stderr);
    const verified = await verifyToken(minted.stdout.trim(), ['cli-secret-new']);
    assert.ok(verified.ok);
    assert.deepEqual(verified.claims.channels, ['whatsapp.>', 'kissflow.DS_A']);
    assert.ok(Math.abs(verified.claims.exp - (Date.now() / 1000 + 600)) < 5);
    const bad = await run(['token', '--channels', 'a..b']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a channel pattern: a\.\.b/);
    assert.equal((await run(['token', '--channels', '>', '--ttl', 'soon'])).code, 2);
  });

  test('puente token prints the token id; puente token revoke <id> and revoke <subject> make realtime refuse them within seconds', async () => {
    const env = { ...process.env, REALTIME_JWT_SECRET: TEST_REALTIME_SECRET };
    const sub = uniqueName('agent-');
    const mint = async () => {
      const minted = await runCli(['token', '--sub', sub, '--channels', '>', '--send', 'ventas'], env);
      assert.equal(minted.code, 0, minted.stderr);
      const jti = /token id \(jti\): (\S+)/.exec(minted.stderr)?.[1];
      assert.ok(jti, minted.stderr);
      return { token: minted.stdout.trim(), jti };
    };
    const status = async (token: string) =>
      (await fetch(`${rt.url}/api/whatsapp.sessions`, { headers: { authorization: `Bearer ${token}` } })).status;
    const first = await mint();
    const second = await mint();
    assert.equal(await status(first.token), 200);
    const byId = await runCli(['token', 'revoke', first.jti], env);
    assert.equal(byId.code, 0, byId.stderr);
    await eventually(async () => (assert.equal(await status(first.token), 401), true), 2_500);
    assert.equal(await status(second.token), 200);
    const bySubject = await runCli(['token', 'revoke', sub], env);
    assert.equal(bySubject.code, 0, bySubject.stderr);
    await eventually(async () => (assert.equal(await status(second.token), 401), true), 2_500);
  });

  test('browser: the dashboard shows a message posted to the gateway within 2 s (headless Chromium)', async () => {
    const session = uniqueName('live-');
    const gateway = await startTestGateway(bus);
    const whatsapp = await startWhatsApp({
      bus,
      db,
      logger,
      config: WhatsAppConfig.parse({ WHATSAPP_SESSIONS: session }),
    });
    let browser: Browser | undefined;
    try {
      const post = async (n: number, text: string) => {
        const body = sampleBody('inboxhub', n) as { sessionId: string; data: { content: string } };
        body.sessionId = session;
        body.data.content = text;
        const sample = signSample('inboxhub', body, secrets);
        const response = await fetch(`${gateway.url}${sample.path}`, {
          method: 'POST',
          headers: sample.headers,
          body: sample.body,
        });
        assert.equal(response.status, 200);
      };
      await post(1, 'primer mensaje');
      await eventually(
        () =>
          db
            .collection(Collections.waConversations)
            .findOne({ session })
            .then((d) => d ?? undefined),
        10_000,
        'the conversation',
      );
      browser = await chromium.launch({
        executablePath: await ensureChromium(() => undefined),
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${rt.url}/#token=${rt.token(['whatsapp.>', 'kissflow.>', 'bitrix.>'])}`);
      await page.locator(`#sessions tr[data-id="${session}"]`).click({ timeout: 10_000 });
      await page.locator('#conversations tr[data-chat]').first().click({ timeout: 10_000 });
      await page.locator('#messages tr', { hasText: 'primer mensaje' }).waitFor({ timeout: 10_000 });
      const started = Date.now();
      await post(1, 'llegó en vivo 🚀');
      await page.locator('#messages tr', { hasText: 'llegó en vivo 🚀' }).waitFor({ timeout: 2_000 });
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2_000, `shown after ${elapsed} ms`);
      assert.match(await page.locator('#state').innerText(), /open/);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: `${artifacts}dashboard.png`, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await whatsapp.stop();
      await gateway.close();
    }
  });

  test('no gap, no backwards: two projector processes apply changes while clients subscribe; every client ends with the read model', async () => {
    const dataset = uniqueName('DS_Live_');
    const channel = Channels.kissflow(dataset);
    const projectors: RunningServiceProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const env = {
        ...process.env,
        MONGO_URL: `${process.env.MONGO_URL}${db.databaseName}`,
        LOG_LEVEL: 'warn',
        HEALTH_PORT: String(port),
        KISSFLOW_DATASETS: dataset,
        PROJECTION_WRITERS: 'shared',
      };
      projectors.push(
        spawnService(root, 'kissflow-sync', port, env, new Writable({ write: (_c, _e, done) => done() })),
      );
    }
    const sockets: TestSocket[] = [];
    try {
      await Promise.all(projectors.map((p) => waitReady(p, 30_000)));
      const keys = Array.from({ length: 15 }, (_, i) => `row${i}`);
      const base = Date.UTC(2026, 0, 1);
      let published = 0;
      let running = true;
      const publisher = (async () => {
        for (let i = 0; running; i++) {
          const rowId = keys[i % keys.length]!;
          const event = createEvent(
            'kissflow.record.upserted.v1',
            {
              dataset,
              rowId,
              fields: { _id: rowId, n: i },
              modifiedAt: new Date(base + i * 1000).toISOString(),
              origin: 'webhook',
            },
            { source: 'urn:test' },
          ) as DomainEvent;
          await bus.publishEvent(event);
          published++;
          if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      for (let c = 0; c < 5; c++) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        const socket = await TestSocket.open(`${rt.wsUrl}?token=${rt.token([channel])}`);
        socket.send({ op: 'subscribe', channel });
        sockets.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 800));
      running = false;
      await publisher;
      // Every event applied: each row at its last version.
      const last = new Map(
        keys.map((k, i) => [
          k,
          Math.max(...Array.from({ length: published }, (_, j) => j).filter((j) => j % keys.length === i)),
        ]),
      );
      await eventually(
        async () => {
          const docs = await db
            .collection<{ rowId: string; fields: { n: number } }>(Collections.kissflowRecords)
            .find({ dataset })
            .toArray();
          return docs.length === keys.length && docs.every((d) => d.fields.n === last.get(d.rowId)) ? true : undefined;
        },
        30_000,
        'the read model to apply every event',
      );
      const final = new Map(
        (
          await db.collection<{ _id: string; _rev: number }>(Collections.kissflowRecords).find({ dataset }).toArray()
        ).map((d) => [d._id, d._rev]),
      );
      for (const [i, socket] of sockets.entries()) {
        await socket.next(
          () => {
            const held = state(socket.frames, channel);
            return held.docs.size === final.size && [...final].every(([id, rev]) => held.docs.get(id) === rev);
          },
          15_000,
          `client ${i} to hold the read model`,
        );
        assert.deepEqual(state(socket.frames, channel).backwards, [], `client ${i} never steps back`);
      }
    } finally {
      for (const socket of sockets) socket.close();
      await Promise.all(projectors.map((p) => stopService(p)));
    }
  });
});

/** The versions a client holds from its frames, and any step back to an older version. */
function state(frames: Frame[], channel: string): { docs: Map<string, number>; backwards: string[] } {
  const docs = new Map<string, number>();
  const backwards: string[] = [];
  for (const f of frames) {
    if (f.channel !== channel) continue;
    const items: { _id: string; _rev: number }[] = f.op === 'snapshot' ? f.items : f.op === 'update' ? [f.doc] : [];
    for (const doc of items) {
      const held = docs.get(doc._id);
      if (held !== undefined && doc._rev < held) backwards.push(`${doc._id}: ${held} -> ${doc._rev}`);
      if (held === undefined || doc._rev > held) docs.set(doc._id, doc._rev);
    }
    if (f.op === 'remove') docs.delete(f.key);
  }
  return { docs, backwards };
}
