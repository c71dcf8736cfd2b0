import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { freePort, spawnService, stopService, waitReady } from '@puente/stack';
import { uniqueName } from '@puente/bus/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${root}cli/bin/puente.js`, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('cli - send-sample delivers correctly signed samples of every provider to a running gateway (dev secrets)', async () => {
  const port = await freePort();
  const env = { ...process.env, MONGO_URL: `${process.env.MONGO_URL}${uniqueName('e2e_')}`, LOG_LEVEL: 'warn' };
  const gateway = spawnService(
    root,
    'gateway',
    port,
    { ...env, GATEWAY_PORT: String(port) },
    new Writable({ write: (_c, _e, done) => done() }),
  );
  try {
    await waitReady(gateway, 30_000);
    // A Cloud API sample carries the sender's contact profile and the message: two events each.
    for (const [provider, events] of [
      ['kissflow', 3],
      ['inboxhub', 3],
      ['evolution', 3],
      ['waha', 3],
      ['whatsapp-cloud', 6],
    ] as const) {
      const result = await run(['send-sample', provider, '--count', '3'], {
        ...env,
        GATEWAY_URL: `http://127.0.0.1:${port}`,
      });
      assert.equal(result.code, 0, `${provider}: ${result.stderr}`);
      // Other tests share the stream: a contact profile they already delivered is (rightly) a duplicate here.
      const match = new RegExp(`${provider}: sent 3/3 \\((\\d+) events accepted, (\\d+) duplicates`).exec(
        result.stdout,
      );
      assert.ok(match, result.stdout);
      assert.equal(Number(match[1]) + Number(match[2]), events, result.stdout);
    }
    const down = await run(['send-sample', 'kissflow'], {
      ...env,
      GATEWAY_URL: `http://127.0.0.1:${await freePort()}`,
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the gateway/);
    assert.equal((await run(['send-sample', 'telegram'], env)).code, 2);
  } finally {
    await stopService(gateway);
  }
});
