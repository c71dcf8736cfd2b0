import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { z } from 'zod';
import {
  ConfigError,
  CommonConfig,
  createLogger,
  duration,
  bytes,
  loadConfig,
  port,
  readiness,
  resolveSecrets,
  startTelemetry,
  mongoDatabaseName,
} from './index.js';

describe('runtime - configuration', () => {
  const Schema = CommonConfig.extend({
    GATEWAY_PORT: port().default(8080),
    TIMEOUT: duration().default(1_000),
    LIMIT: bytes().default(1024),
    API_SECRET: z.string().min(32, 'must be at least 32 characters'),
  });

  test('defaults and units are applied', () => {
    const config = loadConfig(Schema, {
      TIMEOUT: '30s',
      LIMIT: '4MB',
      API_SECRET: 'x'.repeat(32),
      NATS_URL: 'nats://a:4222, nats://b:4222',
    });
    assert.equal(config.GATEWAY_PORT, 8080);
    assert.equal(config.TIMEOUT, 30_000);
    assert.equal(config.LIMIT, 4 * 1024 * 1024);
    assert.deepEqual(config.NATS_URL, ['nats://a:4222', 'nats://b:4222']);
  });

  test("a bad value names the variable, and a secret's value is never echoed", () => {
    assert.throws(
      () => loadConfig(Schema, { GATEWAY_PORT: 'eighty', API_SECRET: 'hunter2-is-short' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.variables.sort(), ['API_SECRET', 'GATEWAY_PORT']);
        assert.match(error.message, /GATEWAY_PORT: must be a port number.*"eighty"/);
        assert.match(error.message, /API_SECRET: must be at least 32 characters/);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
    assert.throws(
      () => loadConfig(Schema, { TIMEOUT: 'soon', API_SECRET: 'x'.repeat(32) }),
      /TIMEOUT: must be a duration/,
    );
    assert.throws(
      () => loadConfig(Schema, { MONGO_URL: 'http://db', API_SECRET: 'x'.repeat(32) }),
      /MONGO_URL: must be a mongodb or mongodb\+srv URL/,
    );
  });

  test('production refuses a missing secret or a development one; development falls back to the dev value', () => {
    assert.deepEqual(resolveSecrets(['KISSFLOW_WEBHOOK_SECRET'], {}).KISSFLOW_WEBHOOK_SECRET, [
      'dev-kissflow-webhook-secret',
    ]);
    assert.deepEqual(resolveSecrets(['API_TOKENS'], { API_TOKENS: 'new-token, old-token' }).API_TOKENS, [
      'new-token',
      'old-token',
    ]);
    assert.throws(
      () => resolveSecrets(['KISSFLOW_WEBHOOK_SECRET'], { NODE_ENV: 'production' }),
      /KISSFLOW_WEBHOOK_SECRET: required in production/,
    );
    assert.throws(
      () => resolveSecrets(['API_TOKENS'], { NODE_ENV: 'production', API_TOKENS: 'real-token,dev-api-token' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /API_TOKENS: the development value is refused/.test(error.message) &&
        !/real-token/.test(error.message),
    );
  });

  test('the MongoDB database is puente unless the URL names one', () => {
    assert.equal(mongoDatabaseName('mongodb://127.0.0.1:27017/'), 'puente');
    assert.equal(mongoDatabaseName('mongodb://user:pw@db1,db2/erp_models?replicaSet=rs0'), 'erp_models');
  });
});

describe('runtime - logs', () => {
  test('lines are JSON, secrets are redacted, and the active trace id is attached', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const telemetry = startTelemetry('test', {});
    try {
      const logger = createLogger({ service: 'test', level: 'info', destination });
      const span = trace.getTracer('test').startSpan('work');
      context.with(trace.setSpan(context.active(), span), () => {
        logger.info({ req: { headers: { authorization: 'Bearer sk_live_do_not_log' } }, password: 'p4ss' }, 'hello');
      });
      span.end();
      await new Promise((resolve) => setImmediate(resolve));
      const line = lines[0]!;
      assert.equal(line.msg, 'hello');
      assert.equal(line.service, 'test');
      assert.equal(line.trace_id, span.spanContext().traceId);
      assert.doesNotMatch(JSON.stringify(line), /sk_live_do_not_log|p4ss/);
    } finally {
      await telemetry.shutdown();
    }
  });
});

test('runtime - readiness fails when a check fails, throws or hangs', async () => {
  assert.deepEqual(await readiness({ a: () => true, b: async () => true }), {
    status: 'ok',
    checks: { a: 'ok', b: 'ok' },
  });
  const report = await readiness(
    {
      a: () => true,
      b: () => {
        throw new Error('down');
      },
      c: () => new Promise<boolean>(() => undefined),
    },
    100,
  );
  assert.deepEqual(report, { status: 'unavailable', checks: { a: 'ok', b: 'failing', c: 'failing' } });
});
