import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { portOpen } from './processes.js';

test('a server outlives neither an exit without stop() nor a SIGKILL of the process that started it', async () => {
  const index = fileURLToPath(new URL('./index.js', import.meta.url));
  // A child process starts nats-server, prints its port, and then ends the way the case says.
  const script = (end: string) => `
    const { startNats, freePort } = await import(${JSON.stringify(index)});
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const port = await freePort();
    await startNats({ dir: mkdtempSync(join(tmpdir(), 'puente-guard-')), port, monitorPort: await freePort(), log: () => {} });
    console.log(port);
    ${end}`;
  for (const [name, end] of [
    ['process.exit', 'process.exit(1);'],
    ['SIGKILL', 'process.kill(process.pid, "SIGKILL");'],
  ] as const) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script(end)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    const port = Number(out.trim());
    assert.ok(port > 0, `${name}: the child started nats-server (${out})`);
    const deadline = Date.now() + 10_000;
    while (await portOpen(port)) {
      assert.ok(Date.now() < deadline, `${name}: nats-server on ${port} outlived the process that started it`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});
