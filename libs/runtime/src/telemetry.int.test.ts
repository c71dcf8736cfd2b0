import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { trace } from '@opentelemetry/api';
import { ConsumerRunner, perMessage, type Delivery } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { startTelemetry } from './telemetry.js';
import { listen } from './httpServer.js';

test("telemetry - trace context crosses NATS: the consumer continues the publisher's trace, and spans are exported over OTLP", async () => {
  const received: { path: string; bytes: number }[] = [];
  const collector = await listen(
    createServer((req, res) => {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        received.push({ path: req.url ?? '', bytes });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    }),
    0,
    '127.0.0.1',
  );
  const telemetry = startTelemetry('test', {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const bus = await connectTestBus();
  try {
    assert.equal(telemetry.mode, 'otlp');
    const ns = uniqueName('tr');
    const seen: { delivery: Delivery; activeTraceId: string | undefined }[] = [];
    const runner = new ConsumerRunner({
      bus,
      consumer: { durable: uniqueName('trace-'), stream: 'EVENTS', filterSubjects: [`evt.test.${ns}.>`] },
      handle: perMessage(async (delivery) => {
        seen.push({ delivery, activeTraceId: trace.getActiveSpan()?.spanContext().traceId });
      }),
    });
    await runner.start();
    const traceId = await trace.getTracer('test').startActiveSpan('webhook received', async (span) => {
      await bus.publish(`evt.test.${ns}.x`, { hello: 1 });
      span.end();
      return span.spanContext().traceId;
    });
    await eventually(() => (seen.length === 1 ? true : undefined), 10_000, 'the delivery');
    await runner.stop();
    const header = seen[0]!.delivery.headers?.get('traceparent') ?? '';
    assert.match(header, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.equal(header.split('-')[1], traceId, "the message carries the publisher's trace");
    assert.equal(seen[0]!.activeTraceId, traceId, 'the handler runs in a span of the same trace');
    await telemetry.shutdown();
    assert.ok(
      received.some((r) => r.path === '/v1/traces' && r.bytes > 0),
      `spans were exported: ${JSON.stringify(received)}`,
    );
  } finally {
    await bus.close();
    await collector.close();
  }
});
