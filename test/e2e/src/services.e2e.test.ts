import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { freePort, SERVICES, spawnService, stopService, waitReady } from '@puente/stack';
import { uniqueName } from '@puente/bus/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const sink = () =>
  new Writable({
    write(_chunk, _enc, done) {
      done();
    },
  });

function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Each run gets its own database; the URL from the test stack has no database name. The whatsapp
  // service serves only a session of its own, so its consumers never take other tests' commands.
  return {
    ...process.env,
    MONGO_URL: `${process.env.MONGO_URL}${uniqueName('e2e_')}`,
    LOG_LEVEL: 'warn',
    WHATSAPP_SESSIONS: uniqueName('e2e-session-'),
    ...extra,
  };
}

describe('services', () => {
  for (const service of SERVICES) {
    test(`${service.name} - starts, reports ready against real NATS and MongoDB, and stops cleanly on SIGTERM`, async () => {
      const port = await freePort();
      // Its log lines (warn and above) are shown when it does not stop cleanly.
      const lines: string[] = [];
      const running = spawnService(
        root,
        service.name,
        port,
        testEnv({ [service.portVariable]: String(port) }),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      );
      try {
        await waitReady(running, 30_000);
        const health = await fetch(`http://127.0.0.1:${port}/healthz`);
        assert.equal(health.status, 200);
        const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as {
          checks: Record<string, string>;
        };
        assert.equal(ready.checks.nats, 'ok');
      } finally {
        const started = Date.now();
        await stopService(running, 10_000);
        assert.equal(running.child.exitCode, 0, `exit code 0 after SIGTERM; its log:\n${lines.join('')}`);
        assert.ok(Date.now() - started < 10_000);
      }
    });
  }

  test('a bad configuration value stops the service with a message naming the variable', async () => {
    const child = spawn(process.execPath, [`${root}services/gateway/dist/main.js`], {
      env: testEnv({ GATEWAY_PORT: 'eighty', LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 78);
    const line = JSON.parse(stderr.trim().split('\n').pop()!) as { level: string; variables: string[]; msg: string };
    assert.equal(line.level, 'fatal');
    assert.deepEqual(line.variables, ['GATEWAY_PORT']);
    assert.match(line.msg, /GATEWAY_PORT: must be a port number/);
  });

  test('production mode refuses a development secret and a missing one, naming them', async () => {
    const child = spawn(process.execPath, [`${root}services/gateway/dist/main.js`], {
      env: testEnv({
        NODE_ENV: 'production',
        GATEWAY_PORT: String(await freePort()),
        KISSFLOW_WEBHOOK_SECRET: 'dev-kissflow-webhook-secret',
        API_TOKENS: 'a-real-looking-token-0123456789',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    assert.equal(await new Promise<number | null>((resolve) => child.once('exit', resolve)), 78);
    const line = JSON.parse(stderr.trim().split('\n').pop()!) as { variables: string[]; msg: string };
    assert.ok(line.variables.includes('KISSFLOW_WEBHOOK_SECRET'));
    assert.ok(line.variables.includes('WHATSAPP_APP_SECRET'));
    assert.ok(!line.variables.includes('API_TOKENS'));
    assert.match(line.msg, /KISSFLOW_WEBHOOK_SECRET: the development value is refused in production/);
    assert.doesNotMatch(stderr, /a-real-looking-token/);
  });

  test('a service that cannot reach NATS at start-up exits non-zero instead of pretending to be ready', async () => {
    const natsPort = await freePort();
    const port = await freePort();
    const running = spawnService(
      root,
      'kissflow-sync',
      port,
      testEnv({ HEALTH_PORT: String(port), NATS_URL: `nats://127.0.0.1:${natsPort}` }),
      sink(),
    );
    const code = await running.exited;
    assert.equal(code, 1);
  });
});
