import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Bus } from '@puente/bus';
import { connectTestBus, testNatsUrl, uniqueName } from '@puente/bus/testing';
import { FakeBitrix24 } from '../testing/index.js';
import { StoredTokens, TOKEN_KEY } from './tokens.js';

// The operator CLI as a process (cli/bin/puente.js; `npm test` builds it with everything else).
const puente = fileURLToPath(new URL('../../../../cli/bin/puente.js', import.meta.url));

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [puente, ...args], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: testNatsUrl(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let bus: Bus;
let fake: FakeBitrix24;
// Never the real bucket: the test runner may reuse a developer's running stack.
const bucket = uniqueName('bitrix_tokens_');
const fakeEnv = (mode: 'oauth' | 'webhook' = 'oauth') => ({ ...fake.env(mode), BITRIX_TOKEN_BUCKET: bucket });

before(async () => {
  bus = await connectTestBus();
  fake = await new FakeBitrix24({ clientSecret: 'fake-cli-secret-not-real-000000' }).start();
});
after(async () => {
  await fake.stop();
  await bus.close();
});

describe('puente bitrix', () => {
  test(
    'auth-url, then auth --code against the token server, then price-types and directory-items read the portal',
    { timeout: 60_000 },
    async () => {
      const env = fakeEnv();
      const url = await runCli(['bitrix', 'auth-url'], env);
      assert.equal(url.code, 0, url.stderr);
      const printed = new URL(url.stdout.split('\n')[0]!);
      assert.equal(`${printed.origin}${printed.pathname}`, `${fake.url}/oauth/authorize/`);
      assert.equal(printed.searchParams.get('client_id'), fake.clientId);
      assert.match(printed.searchParams.get('state') ?? '', /^[0-9a-f]{24}$/);
      const again = await runCli(['bitrix', 'auth-url'], env);
      assert.notEqual(
        new URL(again.stdout.split('\n')[0]!).searchParams.get('state'),
        printed.searchParams.get('state'),
        'the state is random',
      );
      assert.match(url.stdout, /30 seconds.*bitrix auth --code/);

      const auth = await runCli(['bitrix', 'auth', '--code', fake.issueCode()], env);
      assert.equal(auth.code, 0, auth.stderr);
      assert.match(
        auth.stdout,
        new RegExp(`authorized portal 127\\.0\\.0\\.1:\\d+ \\(member id ${fake.memberId}.*bucket ${bucket}`),
      );
      const entry = await (await bus.kv(bucket, { history: 1 })).get(TOKEN_KEY);
      const stored = StoredTokens.parse(entry!.json());
      for (const secret of [stored.accessToken, stored.refreshToken, fake.clientSecret])
        assert.ok(!auth.stdout.includes(secret) && !auth.stderr.includes(secret), 'no token or secret printed');

      const types = await runCli(['bitrix', 'price-types'], env);
      assert.equal(types.code, 0, types.stderr);
      assert.deepEqual(
        types.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s{2,}/)),
        [
          ['id', 'name', 'base', 'xmlId'],
          ['1', 'BASE', 'Y', 'BASE'],
          ['2', 'WHOLESALE', 'N', 'WHOLESALE'],
        ],
      );

      const industry = await runCli(['bitrix', 'directory-items', 'INDUSTRY'], env);
      assert.equal(industry.code, 0, industry.stderr);
      const lines = industry.stdout.trim().split('\n');
      assert.match(lines[0]!, /^STATUS_ID\s+NAME$/);
      assert.ok(lines.some((l) => /^MANUFACTURING\s+Manufacturing$/.test(l)));
      assert.equal(lines.length, 12);
    },
  );

  test(
    'a spent or unknown code, a missing argument and missing settings fail with one line and a non-zero exit',
    { timeout: 60_000 },
    async () => {
      const env = fakeEnv();
      const code = fake.issueCode();
      assert.equal((await runCli(['bitrix', 'auth', '--code', code], env)).code, 0);
      const spent = await runCli(['bitrix', 'auth', '--code', code], env);
      assert.equal(spent.code, 1);
      assert.match(spent.stderr, /^puente: .*authorization code was refused.*bitrix auth-url/);
      assert.equal(spent.stderr.trim().split('\n').length, 1);
      assert.ok(!spent.stderr.includes(fake.clientSecret));

      const noCode = await runCli(['bitrix', 'auth'], env);
      assert.equal(noCode.code, 2);
      assert.match(noCode.stderr, /--code is required/);

      const unset = await runCli(['bitrix', 'price-types'], {});
      assert.equal(unset.code, 1);
      assert.match(unset.stderr, /^puente: Bitrix24 not configured: set BITRIX_WEBHOOK_URL/);

      const unknown = await runCli(['bitrix', 'directory-items', 'NO_SUCH_DIRECTORY'], fakeEnv('webhook'));
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no items in directory NO_SUCH_DIRECTORY/);
    },
  );
});
