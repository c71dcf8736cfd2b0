import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { freePort, spawnService, stopService, waitReady } from '@puente/stack';
import { createEvent, decodeEvent, encodeToken, StreamNames, type DomainEvent } from '@puente/contracts';
import { ConsumerRunner, Outcomes, type Bus } from '@puente/bus';
import { runCli } from './cli.js';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { startTestGateway, TEST_SECRETS } from '@puente/gateway/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let bus: Bus;
let gateway: { url: string; close: () => Promise<void> };

before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
});
after(async () => {
  await gateway.close();
  await bus.close();
});

const run = (args: string[]) => runCli(args);

describe('metrics', () => {
  test('every service serves Prometheus metrics on its HTTP port: webhooks by provider and outcome, consumer lag and DLQ depth', async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const gatewayPort = await freePort();
    const gw = spawnService(
      root,
      'gateway',
      gatewayPort,
      { ...process.env, GATEWAY_PORT: String(gatewayPort), LOG_LEVEL: 'warn' },
      sink,
    );
    const dataset = uniqueName('DS_Metrics_');
    const healthPort = await freePort();
    const kf = spawnService(
      root,
      'kissflow-sync',
      healthPort,
      { ...process.env, HEALTH_PORT: String(healthPort), LOG_LEVEL: 'warn', KISSFLOW_DATASETS: dataset },
      sink,
    );
    try {
      await Promise.all([waitReady(gw, 30_000), waitReady(kf, 30_000)]);
      const post = (secret: string) =>
        fetch(`http://127.0.0.1:${gatewayPort}/webhooks/kissflow/${dataset}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ _id: 'm1', _modified_at: '2025-10-15T10:00:00Z' }),
        });
      assert.equal((await post('dev-kissflow-webhook-secret')).status, 200);
      assert.equal((await post('dev-kissflow-webhook-secret')).status, 200);
      assert.equal((await post('wrong')).status, 401);
      const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const gatewayMetrics = await scrape(gatewayPort);
      assert.match(gatewayMetrics, /puente_webhooks_total\{[^}]*provider="kissflow"[^}]*outcome="accepted"[^}]*\} 1/);
      assert.match(gatewayMetrics, /puente_webhooks_total\{[^}]*outcome="duplicate"[^}]*\} 1/);
      assert.match(gatewayMetrics, /puente_webhooks_total\{[^}]*outcome="unauthorized"[^}]*\} 1/);
      const kfMetrics = await eventually(
        async () => {
          const text = await scrape(healthPort);
          return /puente_consumer_messages_total\{[^}]*outcome="ack"/.test(text) ? text : undefined;
        },
        20_000,
        'the projector to count its acks',
      );
      assert.match(kfMetrics, /puente_consumer_lag\{[^}]*consumer="kissflow-records-/);
      assert.match(kfMetrics, /puente_dlq_depth\{[^}]*consumer="kissflow-records-[^"]*"[^}]*\} 0/);
    } finally {
      await Promise.all([stopService(gw), stopService(kf)]);
    }
  });
});

describe('graceful rollout', () => {
  test('SIGTERM to the gateway: /readyz answers 503 at once, webhooks are still answered for DRAIN_DELAY, then a clean exit', async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const port = await freePort();
    const gw = spawnService(
      root,
      'gateway',
      port,
      { ...process.env, GATEWAY_PORT: String(port), LOG_LEVEL: 'warn', DRAIN_DELAY: '2s', SHUTDOWN_TIMEOUT: '10s' },
      sink,
    );
    try {
      await waitReady(gw, 30_000);
      const dataset = uniqueName('DS_Drain_');
      const post = (rowId: string) =>
        fetch(`http://127.0.0.1:${port}/webhooks/kissflow/${dataset}`, {
          method: 'POST',
          headers: { authorization: 'Bearer dev-kissflow-webhook-secret', 'content-type': 'application/json' },
          body: JSON.stringify({ _id: rowId, _modified_at: '2025-10-15T10:00:00Z' }),
        });
      assert.equal((await post('before')).status, 200);
      const stoppedAt = Date.now();
      gw.child.kill('SIGTERM');
      const ready = await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/readyz`);
          return res.status === 503 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
        },
        1_500,
        '/readyz to answer 503',
      );
      assert.equal(ready.checks.accepting, 'failing');
      assert.ok(Date.now() - stoppedAt < 1_500, 'not ready at once');
      assert.equal((await post('during')).status, 200, 'a webhook routed here while it drains is still accepted');
      assert.equal(await gw.exited, 0, 'a clean exit');
      assert.ok(Date.now() - stoppedAt >= 2_000, 'served for the whole DRAIN_DELAY');
      const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
      assert.equal(
        (await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: subject })).state.subjects?.[subject],
        2,
        'both webhooks are events',
      );
    } finally {
      await stopService(gw);
    }
  });

  test('SIGTERM to a projector under load drains within its bound; its successor finishes; nothing is lost or applied twice', async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const dataset = uniqueName('DS_Rollout_');
    const mongoUrl = `${process.env.MONGO_URL}${uniqueName('t_rollout_')}`;
    const start = async () => {
      const port = await freePort();
      const service = spawnService(
        root,
        'kissflow-sync',
        port,
        {
          ...process.env,
          MONGO_URL: mongoUrl,
          HEALTH_PORT: String(port),
          LOG_LEVEL: 'warn',
          KISSFLOW_DATASETS: dataset,
          SHUTDOWN_TIMEOUT: '10s',
        },
        sink,
      );
      await waitReady(service, 30_000);
      return service;
    };
    const { MongoClient } = await import('mongodb');
    const mongo = await MongoClient.connect(mongoUrl);
    const records = mongo.db().collection('kissflow_records');
    const first = await start();
    try {
      const total = 1_500;
      const publishing = (async () => {
        for (let i = 0; i < total; i++) {
          await bus.publishEvent(
            createEvent(
              'kissflow.record.upserted.v1',
              {
                dataset,
                rowId: `r${i}`,
                fields: { _id: `r${i}`, i },
                modifiedAt: '2025-10-15T10:00:00Z',
                origin: 'webhook',
              },
              { source: 'urn:test' },
            ) as DomainEvent,
          );
        }
      })();
      await eventually(
        async () => ((await records.countDocuments({ dataset })) > 100 ? true : undefined),
        30_000,
        'the projector to be busy',
      );
      const stoppedAt = Date.now();
      first.child.kill('SIGTERM');
      const code = await first.exited;
      const drainMs = Date.now() - stoppedAt;
      assert.equal(code, 0, 'a clean exit');
      assert.ok(drainMs < 10_000, `drained within the shutdown bound (${drainMs} ms)`);
      await publishing;
      const second = await start();
      try {
        await eventually(
          async () => ((await records.countDocuments({ dataset })) === total ? true : undefined),
          60_000,
          'every event applied',
        );
        assert.equal(await records.countDocuments({ dataset, _rev: { $ne: 1 } }), 0, 'none applied twice');
      } finally {
        await stopService(second);
      }
    } finally {
      await stopService(first);
      await mongo
        .db()
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    }
  });
});

describe('operator CLI: status', () => {
  test("status shows each service's readiness, consumer lags, dead letters, CDC slots and the last delivery per source", async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const gatewayPort = await freePort();
    const gw = spawnService(
      root,
      'gateway',
      gatewayPort,
      { ...process.env, GATEWAY_PORT: String(gatewayPort), LOG_LEVEL: 'warn' },
      sink,
    );
    const durable = uniqueName('ops-status-');
    await bus.jsm.consumers.add('EVENTS', {
      durable_name: durable,
      ack_policy: 'explicit' as never,
      filter_subject: `evt.kissflow.record.upserted.${uniqueName('DS_')}`,
    });
    try {
      await waitReady(gw, 30_000);
      const { code, output } = await runCli(['status'], {
        ...process.env,
        GATEWAY_PORT: String(gatewayPort),
        REALTIME_PORT: String(await freePort()),
      });
      assert.equal(code, 1, 'some services are not running here');
      assert.match(
        output,
        new RegExp(`gateway +ready +http://127\\.0\\.0\\.1:${gatewayPort}/readyz +\\(nats ok, accepting ok\\)`),
      );
      assert.match(output, /realtime +down /);
      assert.match(
        output,
        new RegExp(`EVENTS +${durable} +pending +\\d+ +in flight +0 +redelivered +0 +nothing delivered yet`),
      );
      assert.match(output, /^dead letters: \d+/m);
      assert.match(output, /^CDC\n {2}\S/m);
      assert.match(output, /kissflow +last webhook /);
    } finally {
      await stopService(gw);
      await bus.jsm.consumers.delete('EVENTS', durable).catch(() => undefined);
    }
  });
});

describe('operator CLI: dead letters and raw deliveries', () => {
  test('dlq list, show, retry (back to the consumer that gave up, which now handles it) and purge', async () => {
    const dataset = uniqueName('DS_Dlq_');
    const durable = uniqueName('ops-dlq-');
    let broken = true;
    const handled: string[] = [];
    const runner = new ConsumerRunner({
      bus,
      batchSize: 8,
      consumer: { durable, stream: 'EVENTS', filterSubjects: [`evt.kissflow.record.upserted.${encodeToken(dataset)}`] },
      handle: async (deliveries) =>
        deliveries.map((d) => {
          const event = decodeEvent(d.data);
          if (broken) return Outcomes.dead(new Error(`cannot apply ${event.id}: schema v2 expected`));
          handled.push(event.id);
          return Outcomes.ack;
        }),
    });
    await runner.start();
    try {
      const events = ['a', 'b'].map(
        (rowId) =>
          createEvent(
            'kissflow.record.upserted.v1',
            { dataset, rowId, fields: { _id: rowId }, modifiedAt: null, origin: 'webhook' },
            { source: 'urn:test' },
          ) as DomainEvent,
      );
      for (const event of events) await bus.publishEvent(event);
      await eventually(
        async () =>
          (await run(['dlq', 'list', '--consumer', durable])).output.includes('2 dead letters') ? true : undefined,
        15_000,
        'two dead letters',
      );
      const list = await run(['dlq', 'list', '--consumer', durable, '--since', '10m']);
      assert.equal(list.code, 0);
      assert.match(
        list.output,
        new RegExp(
          `${durable}  evt\\.kissflow\\.record\\.upserted\\.${dataset}#\\d+  1 deliveries  .*schema v2 expected`,
        ),
      );
      const ids = [...list.output.matchAll(/^\s*(\d+)\s{2}/gm)].map((m) => m[1]!);
      assert.equal(ids.length, 2);
      const show = await run(['dlq', 'show', ids[0]!]);
      assert.equal(show.code, 0);
      assert.match(show.output, new RegExp(`consumer ${durable}`));
      assert.match(show.output, /"type": "kissflow.record.upserted.v1"/);
      broken = false;
      const retried = await run(['dlq', 'retry', '--id', ids[0]!]);
      assert.equal(retried.code, 0, retried.output);
      assert.match(retried.output, new RegExp(`sent back to ${durable}`));
      await eventually(
        () => (handled.length === 1 ? true : undefined),
        15_000,
        'the consumer to handle the redriven event',
      );
      assert.match((await run(['dlq', 'list', '--consumer', durable])).output, /1 dead letter\b/);
      const purged = await run(['dlq', 'purge', '--consumer', durable]);
      assert.match(purged.output, new RegExp(`1 dead letter removed of ${durable}`));
      assert.equal((await run(['dlq', 'show', ids[1]!])).code, 1);
      assert.equal((await run(['dlq', 'retry'])).code, 2, 'usage error');
    } finally {
      await runner.stop();
      await bus.jsm.consumers.delete('EVENTS', durable).catch(() => undefined);
    }
  });

  test('webhooks list and show what a provider sent (no secret header); redeliver normalizes again, idempotently, and names what it cannot read', async () => {
    const dataset = uniqueName('DS_Raw_');
    const post = (body: unknown) =>
      fetch(`${gateway.url}/webhooks/kissflow/${dataset}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TEST_SECRETS.KISSFLOW_WEBHOOK_SECRET[0]}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    assert.equal((await post({ _id: 'r1', Name: 'uno', _modified_at: '2025-10-15T10:00:00Z' })).status, 200);
    assert.equal((await post({ _id: 'r2', Name: 'dos', _modified_at: '2025-10-15T10:00:01Z' })).status, 200);
    assert.equal((await post({ Name: 'sin id' })).status, 400, 'verified but unreadable: kept anyway');
    const list = await run(['webhooks', 'list', '--provider', 'kissflow', '--dataset', dataset, '--since', '10m']);
    assert.equal(list.code, 0);
    const mine = list.output.split('\n').filter((line) => line.includes(dataset));
    assert.equal(mine.length, 3, list.output);
    assert.match(list.output, /^3 deliveries$/m, 'the dataset filter keeps only this dataset');
    const seq = /^\s*(\d+)/.exec(mine[0]!)![1]!;
    const show = await run(['webhooks', 'show', seq]);
    assert.match(show.output, /"_id":"r1"/);
    assert.doesNotMatch(show.output, /authorization/i);
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    const stored = async () =>
      (await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    assert.equal(await stored(), 2);
    const again = await run([
      'webhooks',
      'redeliver',
      '--provider',
      'kissflow',
      '--dataset',
      dataset,
      '--since',
      '10m',
    ]);
    assert.equal(again.code, 1, 'one delivery could not be read');
    assert.match(again.output, /: the row needs its _id/);
    assert.match(
      again.output,
      /^3 deliveries normalized again: 2 events \(0 new, 2 already in EVENTS\), 1 could not be read$/m,
      "only this dataset's deliveries",
    );
    assert.equal(await stored(), 2, 'nothing published twice');
    const one = await run(['webhooks', 'redeliver', '--seq', seq]);
    assert.equal(one.code, 0);
    assert.match(
      one.output,
      /1 deliveries normalized again: 1 events \(0 new, 1 already in EVENTS\), 0 could not be read/,
    );
  });
});
