import { test } from 'node:test';
import assert from 'node:assert/strict';
import { providers } from '@puente/gateway';
import { echoProvider } from '@puente/gateway/testing';
import { providersCheck } from './providers.js';

test('cli - providers check lists a provider defined only in a fixture as receive-only', async () => {
  const lines: string[] = [];
  const { checks } = await providersCheck(
    ['--url', 'https://hub.example'],
    { ...process.env, META_APP_ID: '', INBOXHUB_API_URL: '', KISSFLOW_ACCOUNT_ID: '' },
    (line) => lines.push(line),
    [...providers.filter((p) => p.name === 'waha'), echoProvider],
  );
  assert.deepEqual(
    checks.map((c) => c.provider),
    ['waha', 'echo'],
  );
  assert.deepEqual(checks[1]!.credentials, { verdict: 'n/a', detail: 'the gateway only receives from it' });
  assert.ok(
    lines.some((line) => line.startsWith('echo ')),
    lines.join('\n'),
  );
});
