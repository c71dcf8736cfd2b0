import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { pino } from 'pino';
import { Channels, encodeToken } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestGateway, TEST_SECRETS } from '@puente/gateway/testing';
import { Config, startKissflowSync } from '@puente/kissflow-sync';
import { startTestRealtime, TestSocket } from '@puente/realtime/testing';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config as BitrixConfig, startBitrixSync } from '@puente/bitrix-sync';
import { FakeBitrix24 } from '@puente/bitrix-sync/testing';
import { createTestGlymsDatabase } from '@puente/cdc/testing';

// One process: every span goes to memory, W3C trace context as in production.
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register({ propagator: new W3CTraceContextPropagator() });

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
});
after(async () => {
  await database.drop();
  await bus.close();
  await provider.shutdown();
});

test('one trace from the webhook through the bus, the projector and its read-model write, the change notice, to the realtime push', async () => {
  const dataset = uniqueName('DS_Trace_');
  const gateway = await startTestGateway(bus);
  const projector = await startKissflowSync({
    bus,
    db: database.db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ KISSFLOW_DATASETS: dataset }),
  });
  const realtime = await startTestRealtime(bus, database.db);
  const socket = await TestSocket.open(`${realtime.wsUrl}?token=${realtime.token(['kissflow.>'])}`);
  try {
    socket.send({ op: 'subscribe', channel: Channels.kissflow(dataset) });
    await socket.next((f) => f.op === 'snapshot');
    const response = await fetch(`${gateway.url}/webhooks/kissflow/${dataset}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_SECRETS.KISSFLOW_WEBHOOK_SECRET[0]}`,
        'content-type': 'application/json',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
      body: JSON.stringify({ _id: 't1', _modified_at: '2025-10-15T10:00:00Z' }),
    });
    assert.equal(response.status, 200);
    await socket.next((f) => f.op === 'update');
    const spans = await eventually(
      () => {
        const all = exporter
          .getFinishedSpans()
          .filter((s) => s.spanContext().traceId === '4bf92f3577b34da6a3ce929d0e0e4736');
        return all.some((s) => s.name === 'realtime push') && all.some((s) => / process$/.test(s.name))
          ? all
          : undefined;
      },
      10_000,
      'the realtime push span',
    );
    const names = spans.map((s) => s.name);
    const byName = (name: string | RegExp): ReadableSpan =>
      spans.find((s) => (typeof name === 'string' ? s.name === name : name.test(s.name)))!;
    assert.ok(byName('webhook kissflow'), `the gateway span continues the sender's trace: ${names.join(', ')}`);
    assert.ok(
      byName(/^kissflow-records-\w+ process$/),
      `the projector's span is in the same trace: ${names.join(', ')}`,
    );
    const push = byName('realtime push');
    assert.equal(push.attributes['puente.channel'], `kissflow.${encodeToken(dataset)}`);
    assert.equal(push.attributes['puente.subscribers'], 1);
    // Parent chain: realtime push <- (notice published in) the read-model write <- the projector's batch <- (event published in) the gateway.
    const parentOf = (span: ReadableSpan) =>
      spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
    const write = parentOf(push)!;
    assert.equal(write?.name, 'project kissflow_records');
    assert.equal(write.attributes['puente.written'], 1);
    assert.match(parentOf(write)?.name ?? '', /^kissflow-records-\w+ process$/);
    assert.equal(parentOf(parentOf(write)!)?.name, 'webhook kissflow');
    assert.equal(
      parentOf(parentOf(parentOf(write)!)!),
      undefined,
      "the gateway span's parent is the sender's (not exported here)",
    );
  } finally {
    socket.close();
    await realtime.close();
    await projector.stop();
    await gateway.close();
  }
});

test("one trace from a CDC change through the relay's publish, the companies consumer, to the Bitrix24 batch call and the bitrix_links write", async () => {
  const pg = await createTestGlymsDatabase();
  const fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
  const table = uniqueName('cliente_').toLowerCase();
  await pg.sql(`create table public.${table} (like public.cliente including all)`);
  const mappingFile = join(tmpdir(), `${table}.json`);
  writeFileSync(mappingFile, JSON.stringify({ table: `public.${table}`, originatorId: `trace_${table}` }));
  const running = await startBitrixSync({
    bus,
    db: database.db,
    logger: pino({ level: 'silent' }),
    config: BitrixConfig.parse({
      ...fake.env('webhook'),
      GLYMS_DATABASE_URL: pg.url,
      GLYMS_CDC_TABLES: `public.${table}`,
      GLYMS_CDC_SLOT: table,
      GLYMS_CDC_PUBLICATION: `pub_${table}`,
      BITRIX_COMPANY_MAPPING: mappingFile,
      BITRIX_COALESCE_MS: '50',
      BITRIX_CATALOG_INTERVAL_MS: '0',
    }),
  });
  try {
    await eventually(() => (running.active()?.source ? true : undefined), 10_000, 'the relay');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await pg.sql(`insert into public.${table} (razon_social) values ('Traza S.A.')`);
    await eventually(
      () => ([...fake.companies.values()].some((c) => c.TITLE === 'Traza S.A.') ? true : undefined),
      15_000,
      'the company',
    );
    const spans = await eventually(
      () => {
        const cdc = exporter
          .getFinishedSpans()
          .find((s) => s.name === 'glyms.cdc transaction' && s.attributes['messaging.batch.message_count'] === 1);
        if (!cdc) return undefined;
        const trace = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === cdc.spanContext().traceId);
        return trace.some((s) => s.name === 'bitrix batch') && trace.some((s) => s.name === 'project bitrix_links')
          ? trace
          : undefined;
      },
      10_000,
      "the Bitrix24 call in the CDC change's trace",
    );
    const names = spans.map((s) => s.name);
    const parentOf = (span: ReadableSpan) =>
      spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
    const call =
      spans.find((s) => s.name === 'bitrix batch' && s.attributes['puente.bitrix.lookup'] === undefined) ??
      spans.find((s) => s.name === 'bitrix batch')!;
    const consumer = parentOf(call);
    assert.match(
      consumer?.name ?? '',
      /^bitrix-companies-\S+ process$/,
      `the Bitrix24 call is made inside the consumer's span: ${names.join(', ')}`,
    );
    assert.equal(
      parentOf(consumer!)?.name,
      'glyms.cdc transaction',
      `the consumer continues the relay's trace: ${names.join(', ')}`,
    );
  } finally {
    await running.stop();
    await fake.stop();
    await pg.drop();
  }
});
