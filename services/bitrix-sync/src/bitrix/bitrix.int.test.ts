import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from 'nats';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { loadConfig } from '@puente/runtime';
import { FakeBitrix24 } from '../testing/index.js';
import {
  type BitrixApiError,
  BitrixClient,
  BitrixNotAuthorizedError,
  BitrixReauthRequiredError,
  BitrixSettings,
  BitrixTokenStore,
  LeakyBucket,
  bitrixClientFrom,
  bitrixMissing,
  isBitrixNotFound,
  type BatchCommand,
  type CrmCompanyFields,
} from './index.js';

let bus: Bus;
let fake: FakeBitrix24;

before(async () => {
  bus = await connectTestBus();
  fake = await new FakeBitrix24({ bucket: { burst: 500, drainPerSecond: 50 } }).start();
});
after(async () => {
  await fake.stop();
  await bus.close();
});

const tokenBucket = (b: Bus = bus): Promise<KV> => b.kv(uniqueName('bitrix_tokens_'), { history: 1 });

function store(
  kv: KV,
  f: FakeBitrix24 = fake,
  extra: Partial<ConstructorParameters<typeof BitrixTokenStore>[0]> = {},
): BitrixTokenStore {
  return new BitrixTokenStore({
    kv,
    portalUrl: f.url,
    oauthUrl: f.url,
    clientId: f.clientId,
    clientSecret: f.clientSecret,
    timeoutMs: 5_000,
    pollMs: 20,
    ...extra,
  });
}

/** An authorized OAuth client on a fresh token bucket. */
async function oauthClient(
  f: FakeBitrix24 = fake,
  extra: Partial<ConstructorParameters<typeof BitrixClient>[0]> = {},
  kv?: KV,
): Promise<{ client: BitrixClient; tokens: BitrixTokenStore; kv: KV }> {
  const bucketKv = kv ?? (await tokenBucket());
  const tokens = store(bucketKv, f);
  if (!kv) await tokens.exchangeCode(f.issueCode());
  return {
    client: new BitrixClient({
      auth: { kind: 'oauth', tokens, portalUrl: f.url },
      timeoutMs: 5_000,
      retries: 2,
      retryDelayMs: 20,
      ...extra,
    }),
    tokens,
    kv: bucketKv,
  };
}

const adds = (prefix: string, from: number, count: number): Record<string, BatchCommand> =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `add_${from + i}`,
      {
        method: 'crm.company.add',
        params: {
          fields: { TITLE: `${prefix} ${from + i}`, ORIGINATOR_ID: 'glyms', ORIGIN_ID: `${prefix}:${from + i}` },
        },
      },
    ]),
  );

const companiesOf = (f: FakeBitrix24, prefix: string) =>
  [...f.companies.values()].filter((c) => String(c.ORIGIN_ID ?? '').startsWith(`${prefix}:`));

describe('bitrix client', () => {
  test('a batch with one failing sub-command returns the other results, the error, and substitutes $result references', async () => {
    const { client } = await oauthClient();
    const origin = uniqueName('o');
    const out = await client.batch({
      add: {
        method: 'crm.company.add',
        params: {
          fields: {
            TITLE: 'Comercial Pérez & Hijos S.A.C.',
            ORIGINATOR_ID: 'glyms',
            ORIGIN_ID: origin,
            EMAIL: [{ VALUE: 'ventas@perez.pe', VALUE_TYPE: 'WORK' }],
          },
        },
      },
      bad: {
        method: 'crm.company.add',
        params: { fields: { TITLE: 'Bad mail', EMAIL: [{ VALUE: 'not-an-email', VALUE_TYPE: 'WORK' }] } },
      },
      get: { method: 'crm.company.get', params: { id: '$result[add]' } },
      find: {
        method: 'crm.company.list',
        params: { filter: { ORIGINATOR_ID: 'glyms', ORIGIN_ID: origin }, select: ['ID', 'TITLE', 'EMAIL'] },
      },
    });
    assert.equal(typeof out.result.add, 'number');
    assert.deepEqual(Object.keys(out.errors), ['bad']);
    assert.equal(out.errors.bad!.error, 'ERROR_CORE');
    const got = out.result.get as CrmCompanyFields;
    assert.equal(got.ID, String(out.result.add));
    assert.equal(got.TITLE, 'Comercial Pérez & Hijos S.A.C.');
    assert.deepEqual(
      got.EMAIL?.map((e) => [e.VALUE, e.VALUE_TYPE, e.TYPE_ID]),
      [['ventas@perez.pe', 'WORK', 'EMAIL']],
    );
    assert.deepEqual(
      (out.result.find as CrmCompanyFields[]).map((c) => c.ID),
      [String(out.result.add)],
    );
    assert.equal(out.total.find, 1);
    assert.equal(fake.requests.at(-1)!.commands, 4, 'one request carried the four sub-calls');
  });

  test('with halt, the batch stops at the first failing sub-command', async () => {
    const { client } = await oauthClient();
    const out = await client.batch(
      {
        bad: { method: 'crm.company.add', params: { fields: { TITLE: '' } } },
        never: { method: 'crm.company.add', params: { fields: { TITLE: 'never' } } },
      },
      { halt: true },
    );
    assert.deepEqual(Object.keys(out.errors), ['bad']);
    assert.deepEqual(out.result, {});
  });

  test('more than 50 commands are refused before anything is sent', async () => {
    const { client } = await oauthClient();
    const before = fake.requests.length;
    await assert.rejects(
      client.batch(adds('x', 0, 51)),
      (e: BitrixApiError) => e.code === 'ERROR_BATCH_LENGTH_EXCEEDED' && /at most 50/.test(e.message),
    );
    assert.equal(fake.requests.length, before);
  });

  test(
    '2,000 creates in 40 batches against a portal bucket of 5 at 2/s never draw QUERY_LIMIT_EXCEEDED',
    { timeout: 60_000 },
    async () => {
      const tight = await new FakeBitrix24({ bucket: { burst: 5, drainPerSecond: 2 } }).start();
      try {
        const { client } = await oauthClient(tight, { bucket: { burst: 5, drainPerSecond: 2 } });
        const started = Date.now();
        for (let b = 0; b < 40; b++) {
          const out = await client.batch(adds('burst', b * 50, 50));
          assert.deepEqual(out.errors, {});
        }
        assert.equal(tight.limitErrors, 0);
        assert.equal(client.stats.limitExceeded, 0);
        assert.equal(companiesOf(tight, 'burst').length, 2_000);
        assert.equal(new Set(companiesOf(tight, 'burst').map((c) => c.ORIGIN_ID)).size, 2_000);
        // 4 at once, then one every 500 ms: the limiter, not the portal, set the pace.
        assert.ok(Date.now() - started >= 17_000, `took ${Date.now() - started} ms`);
      } finally {
        await tight.stop();
      }
    },
  );

  test(
    'callers sharing one client share its bucket: parallel work stays under the portal limit',
    { timeout: 30_000 },
    async () => {
      const tight = await new FakeBitrix24({ bucket: { burst: 4, drainPerSecond: 4 } }).start();
      try {
        const { client } = await oauthClient(tight, { bucket: { burst: 4, drainPerSecond: 4 } });
        await Promise.all(
          Array.from({ length: 5 }, (_, w) =>
            (async () => {
              for (let i = 0; i < 4; i++)
                await client.call('crm.company.add', { fields: { TITLE: `w${w}-${i}`, ORIGIN_ID: `par:${w}-${i}` } });
            })(),
          ),
        );
        assert.equal(tight.limitErrors, 0);
        assert.equal(companiesOf(tight, 'par').length, 20);
      } finally {
        await tight.stop();
      }
    },
  );

  test('after QUERY_LIMIT_EXCEEDED the client marks the bucket full, backs off and retries', async () => {
    const { client } = await oauthClient(fake, { maxBackoffMs: 100 });
    fake.inject({
      status: 503,
      error: 'QUERY_LIMIT_EXCEEDED',
      description: 'Too many requests',
      method: 'crm.status.list',
      times: 2,
    });
    const rows = await client.call<{ STATUS_ID: string }[]>('crm.status.list', {
      filter: { ENTITY_ID: 'COMPANY_TYPE' },
    });
    assert.ok(rows.some((r) => r.STATUS_ID === 'CUSTOMER'));
    assert.equal(client.stats.limitExceeded, 2);
    assert.equal(client.bucket.stats.markedFull, 2);
    assert.deepEqual(
      fake.requests
        .filter((r) => r.method === 'crm.status.list')
        .slice(-3)
        .map((r) => r.outcome),
      ['QUERY_LIMIT_EXCEEDED', 'QUERY_LIMIT_EXCEEDED', 'ok'],
    );
  });

  test('QUERY_LIMIT_EXCEEDED that does not stop ends in a retryable error after the bounded backoffs', async () => {
    const { client } = await oauthClient(fake, {
      maxBackoffMs: 20,
      limitRetries: 2,
      bucket: new LeakyBucket({ burst: 1000, drainPerSecond: 1000 }),
    });
    fake.inject({ status: 503, error: 'QUERY_LIMIT_EXCEEDED', method: 'crm.status.list', times: 3 });
    await assert.rejects(
      client.call('crm.status.list'),
      (e: BitrixApiError) => e.code === 'QUERY_LIMIT_EXCEEDED' && e.retryable && e.status === 503,
    );
  });

  test('OPERATION_TIME_LIMIT pauses that method until operating_reset_at, then retries', async () => {
    const { client } = await oauthClient();
    fake.inject({
      status: 429,
      error: 'OPERATION_TIME_LIMIT',
      description: 'Method is blocked due to operation time limit.',
      method: 'crm.company.list',
      operatingResetInMs: 1_500,
    });
    const started = Date.now();
    await client.call('crm.company.list', { filter: { ORIGIN_ID: 'none' } });
    assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
    assert.equal(client.stats.operatingPauses, 1);
  });

  test('5xx answers are retried a bounded number of times; a validation error (ERROR_CORE) is not retried', async () => {
    const { client } = await oauthClient();
    fake.inject({ status: 500, error: 'INTERNAL_SERVER_ERROR', method: 'crm.company.add', times: 2 });
    const id = await client.call<number>('crm.company.add', { fields: { TITLE: 'after two 500s' } });
    assert.ok(fake.companies.has(id));
    assert.equal(client.stats.transportRetries, 2);
    const before = fake.requests.length;
    await assert.rejects(
      client.call('crm.company.add', { fields: { TITLE: 'x', EMAIL: [{ VALUE: 'broken@', VALUE_TYPE: 'WORK' }] } }),
      (e: BitrixApiError) => {
        assert.equal(e.code, 'ERROR_CORE');
        assert.equal(e.status, 400);
        assert.equal(e.method, 'crm.company.add');
        assert.equal(e.retryable, false);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
    assert.equal(fake.requests.length, before + 1);
  });

  test('an unknown method and a deleted company give clear errors', async () => {
    const { client } = await oauthClient();
    await assert.rejects(
      client.call('crm.company.nosuch'),
      (e: BitrixApiError) => e.code === 'ERROR_METHOD_NOT_FOUND' && e.status === 404,
    );
    await assert.rejects(client.call('crm.company.update', { id: 999_999, fields: { TITLE: 'x' } }), (e: unknown) =>
      isBitrixNotFound(e),
    );
  });

  test('expired_token in the middle of a run refreshes exactly once and loses nothing', async () => {
    const { client, tokens } = await oauthClient();
    const refreshes = fake.refreshCalls;
    const prefix = uniqueName('exp');
    for (let b = 0; b < 4; b++) {
      if (b === 2) fake.expireAccessTokens();
      const out = await client.batch(adds(prefix, b * 50, 50));
      assert.deepEqual(out.errors, {});
    }
    assert.equal(fake.refreshCalls - refreshes, 1);
    assert.equal(tokens.refreshes, 1);
    assert.equal(companiesOf(fake, prefix).length, 200);
    assert.equal(new Set(companiesOf(fake, prefix).map((c) => c.ORIGIN_ID)).size, 200);
  });

  test('a token that expires while a 5xx is retried is refreshed again; one refused right after its refresh is not', async () => {
    const { client } = await oauthClient(fake, { retries: 3, retryDelayMs: 20 });
    await client.call('crm.status.list');
    const refreshes = fake.refreshCalls;
    // In order: the token expires, the refreshed one is accepted but the portal answers 503, and while the
    // client backs off that token expires too (tokens expiring at random under the fault suite's 503s).
    fake.inject({
      status: 401,
      error: 'expired_token',
      description: 'The access token provided has expired.',
      method: 'crm.company.add',
    });
    fake.inject({ status: 503, error: 'INTERNAL_SERVER_ERROR', method: 'crm.company.add' });
    fake.inject({
      status: 401,
      error: 'expired_token',
      description: 'The access token provided has expired.',
      method: 'crm.company.add',
    });
    const id = await client.call<number>('crm.company.add', { fields: { TITLE: 'after expiry, 503, expiry' } });
    assert.ok(fake.companies.has(id));
    assert.equal(fake.refreshCalls - refreshes, 2, 'one refresh per expiry');
    // A token refused on its first use right after the refresh is not refreshed in a loop.
    fake.inject({
      status: 401,
      error: 'expired_token',
      description: 'The access token provided has expired.',
      method: 'crm.company.add',
      times: 2,
    });
    await assert.rejects(
      client.call('crm.company.add', { fields: { TITLE: 'never' } }),
      (e: BitrixApiError) => e.code === 'expired_token' && /right after a token refresh/.test(e.message),
    );
    assert.equal(fake.refreshCalls - refreshes, 3);
  });

  test('two processes sharing the token bucket both recover from expired_token with one refresh', async () => {
    const other = await connectTestBus();
    try {
      const name = uniqueName('bitrix_tokens_');
      const kvA = await bus.kv(name, { history: 1 });
      await store(kvA).exchangeCode(fake.issueCode());
      const a = await oauthClient(fake, {}, kvA);
      const b = await oauthClient(fake, {}, await other.kv(name, { history: 1 }));
      await a.client.call('crm.status.list');
      await b.client.call('crm.status.list');
      const refreshes = fake.refreshCalls;
      fake.expireAccessTokens();
      const [x, y] = await Promise.all([
        a.client.call<{ STATUS_ID: string }[]>('crm.status.list', { filter: { ENTITY_ID: 'INDUSTRY' } }),
        b.client.call<{ STATUS_ID: string }[]>('crm.status.list', { filter: { ENTITY_ID: 'INDUSTRY' } }),
      ]);
      assert.ok(x.some((r) => r.STATUS_ID === 'MANUFACTURING') && y.some((r) => r.STATUS_ID === 'MANUFACTURING'));
      assert.equal(fake.refreshCalls - refreshes, 1, 'exactly one refresh reached the token server');
      assert.equal(a.tokens.refreshes + b.tokens.refreshes, 1);
      // Both go on with the same new tokens, and both survive the next expiry too.
      fake.expireAccessTokens();
      await Promise.all([a.client.call('crm.status.list'), b.client.call('crm.status.list')]);
      assert.equal(fake.refreshCalls - refreshes, 2);
      assert.equal((await a.tokens.stored())?.refreshing, undefined, 'no claim left behind');
    } finally {
      await other.close();
    }
  });

  test('a refresh claim left by a dead process is taken over once it expires', async () => {
    const kv = await tokenBucket();
    const tokens = store(kv, fake, { claimTtlMs: 300 });
    const stored = await tokens.exchangeCode(fake.issueCode());
    const entry = (await kv.get('oauth'))!;
    await kv.update(
      'oauth',
      JSON.stringify({ ...stored, refreshing: { owner: 'dead-process', until: Date.now() + 300 } }),
      entry.revision,
    );
    const started = Date.now();
    const fresh = await tokens.refresh(stored.accessToken);
    assert.notEqual(fresh.accessToken, stored.accessToken);
    assert.ok(Date.now() - started >= 250, 'it waited for the claim to expire');
    assert.equal((await tokens.stored())?.refreshing, undefined);
  });

  test('a refresh token rotated away gives invalid_grant and tells the operator to authorize again', async () => {
    const a = await oauthClient();
    // A copy of the tokens in another bucket: its refresh token dies when the first store refreshes.
    const copyKv = await tokenBucket();
    await copyKv.put('oauth', JSON.stringify(await a.tokens.current()));
    const b = await oauthClient(fake, {}, copyKv);
    fake.expireAccessTokens();
    await a.client.call('crm.status.list');
    await assert.rejects(b.client.call('crm.status.list'), (e: unknown) => {
      assert.ok(e instanceof BitrixReauthRequiredError);
      assert.match((e as Error).message, /invalid_grant.*npx puente bitrix auth-url/);
      return true;
    });
    const kv = await tokenBucket();
    await assert.rejects(store(kv).current(), BitrixNotAuthorizedError);
    await assert.rejects(
      store(kv).exchangeCode('fake-code-never-issued'),
      (e: BitrixApiError) => e.code === 'invalid_grant' && /auth-url/.test(e.message),
    );
  });

  test('an idle install refreshes a refresh token older than the maximum age, and only then', async () => {
    const kv = await tokenBucket();
    await store(kv).exchangeCode(fake.issueCode());
    const before = fake.refreshCalls;
    assert.equal(await store(kv, fake, { refreshTokenMaxAgeMs: 25 * 86_400_000 }).refreshIfStale(), false);
    const later = {
      now: () => Date.now() + 26 * 86_400_000,
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    };
    const aged = store(kv, fake, { refreshTokenMaxAgeMs: 25 * 86_400_000, clock: later });
    assert.equal(await aged.refreshIfStale(), true);
    assert.equal(fake.refreshCalls - before, 1);
    assert.equal(await aged.refreshIfStale(), false, 'the new refresh token is young');
  });

  test('errors never contain the client secret, a token or the webhook code', async () => {
    const secret = 'fake-secret-must-not-leak-000000';
    const code = 'fakehooksecretcode1234';
    const f = await new FakeBitrix24({ clientSecret: secret, webhook: { userId: 3, code } }).start();
    const texts: string[] = [];
    const collect = (e: unknown) => {
      texts.push(
        String(e),
        (e as Error).message,
        JSON.stringify(e),
        String((e as Error).cause ?? ''),
        (e as Error).stack ?? '',
      );
      return true;
    };
    try {
      const hook = new BitrixClient({ auth: { kind: 'webhook', url: f.webhookUrl() }, retries: 0, timeoutMs: 2_000 });
      await assert.rejects(
        hook.call('crm.company.add', { fields: { TITLE: 'x', EMAIL: [{ VALUE: 'nope', VALUE_TYPE: 'WORK' }] } }),
        collect,
      );
      const wrong = new BitrixClient({ auth: { kind: 'webhook', url: `${f.url}/rest/3/${code}x/` }, retries: 0 });
      await assert.rejects(
        wrong.call('crm.status.list'),
        (e: BitrixApiError) => collect(e) && e.code === 'NO_AUTH_FOUND' && e.status === 401,
      );
      const closed = new BitrixClient({
        auth: { kind: 'webhook', url: `http://127.0.0.1:9/rest/3/${code}/` },
        retries: 1,
        retryDelayMs: 10,
      });
      await assert.rejects(
        closed.call('crm.status.list'),
        (e: BitrixApiError) => collect(e) && e.code === 'NETWORK' && e.retryable,
      );
      const wrongSecret = new BitrixTokenStore({
        kv: await tokenBucket(),
        oauthUrl: f.url,
        clientId: f.clientId,
        clientSecret: `${secret}x`,
      });
      await assert.rejects(
        wrongSecret.exchangeCode(f.issueCode()),
        (e: BitrixApiError) => collect(e) && e.code === 'invalid_client',
      );
      const { client, tokens } = await oauthClient(f);
      const token = (await tokens.current()).accessToken;
      f.inject({ status: 401, error: 'expired_token', description: `token ${token} has expired`, times: 2 });
      await assert.rejects(
        client.call('crm.status.list'),
        (e: BitrixApiError) => collect(e) && e.code === 'expired_token' && !e.retryable,
      );
      const all = texts.join('\n');
      const current = await tokens.current();
      for (const leak of [secret, code, token, current.accessToken, current.refreshToken])
        assert.ok(!all.includes(leak), `leaked ${leak.slice(0, 8)}...`);
    } finally {
      await f.stop();
    }
  });

  test('an inbound webhook URL works as the only credential', async () => {
    const client = new BitrixClient({ auth: { kind: 'webhook', url: fake.webhookUrl() } });
    const id = await client.call<number>('crm.company.add', { fields: { TITLE: 'Vía webhook', ORIGIN_ID: 'hook:1' } });
    assert.equal((await client.call<CrmCompanyFields>('crm.company.get', { id })).TITLE, 'Vía webhook');
    const out = await client.batch({
      a: { method: 'crm.company.get', params: { id } },
      b: { method: 'catalog.priceType.list' },
    });
    assert.deepEqual(out.errors, {});
    const hookConfig = loadConfig(BitrixSettings, fake.env('webhook'));
    assert.equal(bitrixMissing(hookConfig), undefined);
    const fromConfig = await bitrixClientFrom({ config: hookConfig, bus });
    assert.equal(fromConfig.tokens, undefined);
    assert.equal((await fromConfig.call<CrmCompanyFields>('crm.company.get', { id })).ID, String(id));
  });

  test('settings: what is missing is said in one line, and an OAuth client comes from the environment', async () => {
    assert.match(
      bitrixMissing(loadConfig(BitrixSettings, { BITRIX_PORTAL_URL: fake.url }))!,
      /missing BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET/,
    );
    assert.throws(
      () => loadConfig(BitrixSettings, { BITRIX_WEBHOOK_URL: 'https://portal.example/rest/' }),
      /BITRIX_WEBHOOK_URL/,
    );
    const config = loadConfig(BitrixSettings, { ...fake.env(), BITRIX_RATE_BURST: '250', BITRIX_RATE_PER_SECOND: '5' });
    assert.equal(config.BITRIX_REFRESH_TOKEN_MAX_AGE_DAYS, 25);
    const client = await bitrixClientFrom({ config, bus, tokenBucket: uniqueName('bitrix_tokens_') });
    assert.equal(client.bucket.burst, 250);
    await client.tokens!.exchangeCode(fake.issueCode());
    const types = await client.call<{ priceTypes: { name: string; base: string }[] }>('catalog.priceType.list');
    assert.deepEqual(
      types.priceTypes.map((t) => [t.name, t.base]),
      [
        ['BASE', 'Y'],
        ['WHOLESALE', 'N'],
      ],
    );
  });

  test('list pages through 50 rows at a time; start -1 gives one page without a count', async () => {
    const { client } = await oauthClient();
    const prefix = uniqueName('pg');
    for (let b = 0; b < 3; b++) await client.batch(adds(prefix, b * 50, b === 2 ? 20 : 50));
    const pages: number[] = [];
    const seen: string[] = [];
    for await (const page of client.list<CrmCompanyFields>(
      'crm.company.list',
      { filter: { '%ORIGIN_ID': `${prefix}:` }, select: ['ID', 'ORIGIN_ID'], order: { ID: 'ASC' } },
      (r) => r as CrmCompanyFields[],
    )) {
      pages.push(page.length);
      seen.push(...page.map((c) => c.ORIGIN_ID!));
    }
    assert.deepEqual(pages, [50, 50, 20]);
    assert.equal(new Set(seen).size, 120);
    const keyset = await client.callEnvelope('crm.company.list', {
      filter: { '%ORIGIN_ID': `${prefix}:`, '>ID': 0 },
      order: { ID: 'ASC' },
      start: -1,
    });
    assert.equal((keyset.result as unknown[]).length, 50);
    assert.equal(keyset.total, undefined);
    assert.equal(keyset.next, undefined);
  });
});

describe('fake Bitrix24 multi-value fields (the pusher relies on them)', () => {
  test('an entry without ID is added, {ID, VALUE} changes it, DELETE / empty VALUE / bare {ID} delete it, others stay', async () => {
    const { client } = await oauthClient();
    const id = await client.call<number>('crm.company.add', {
      fields: {
        TITLE: 'Multi',
        PHONE: [
          { VALUE: '+51 1 111', VALUE_TYPE: 'WORK' },
          { VALUE: '+51 1 222', VALUE_TYPE: 'MOBILE' },
          { VALUE: '+51 1 333', VALUE_TYPE: 'FAX' },
          { VALUE: '+51 1 444', VALUE_TYPE: 'HOME' },
        ],
        EMAIL: [{ VALUE: 'a@x.pe', VALUE_TYPE: 'WORK' }],
      },
    });
    const phones = (await client.call<CrmCompanyFields>('crm.company.get', { id })).PHONE!;
    assert.deepEqual(
      phones.map((p) => [p.VALUE, p.VALUE_TYPE, p.TYPE_ID]),
      [
        ['+51 1 111', 'WORK', 'PHONE'],
        ['+51 1 222', 'MOBILE', 'PHONE'],
        ['+51 1 333', 'FAX', 'PHONE'],
        ['+51 1 444', 'HOME', 'PHONE'],
      ],
    );
    const [p1, p2, p3, p4] = phones.map((p) => p.ID!);
    // Through a batch, so the PHP query encoding of the same update is exercised too.
    const out = await client.batch({
      up: {
        method: 'crm.company.update',
        params: {
          id,
          fields: {
            PHONE: [
              { ID: p1, VALUE: '+51 1 999', VALUE_TYPE: 'WORK' },
              { ID: p2, DELETE: 'Y' },
              { ID: p3, VALUE: '' },
              { VALUE: '+51 1 555', VALUE_TYPE: 'MOBILE' },
            ],
          },
        },
      },
    });
    assert.deepEqual(out.errors, {});
    await client.call('crm.company.update', { id, fields: { PHONE: [{ ID: p4 }] } });
    const after = await client.call<CrmCompanyFields>('crm.company.get', { id });
    assert.deepEqual(
      after.PHONE!.map((p) => [p.ID, p.VALUE, p.VALUE_TYPE]),
      [
        [p1, '+51 1 999', 'WORK'],
        [after.PHONE![1]!.ID, '+51 1 555', 'MOBILE'],
      ],
    );
    assert.ok(![p1, p2, p3, p4].includes(String(after.PHONE![1]!.ID)), 'the added entry has a new ID');
    assert.deepEqual(
      after.EMAIL!.map((e) => e.VALUE),
      ['a@x.pe'],
      'unmentioned fields stay',
    );
    // Resending the value without ID adds a duplicate: why the pusher diffs by ID.
    await client.call('crm.company.update', { id, fields: { EMAIL: [{ VALUE: 'a@x.pe', VALUE_TYPE: 'WORK' }] } });
    assert.equal((await client.call<CrmCompanyFields>('crm.company.get', { id })).EMAIL!.length, 2);
    const listed = await client.call<CrmCompanyFields[]>('crm.company.list', { filter: { ID: id } });
    assert.equal(listed[0]!.PHONE, undefined, 'list leaves multi-value fields out unless selected');
    const withPhone = await client.call<CrmCompanyFields[]>('crm.company.list', {
      filter: { PHONE: '+51 1 999' },
      select: ['ID', 'PHONE'],
    });
    assert.deepEqual(
      withPhone.map((c) => c.ID),
      [String(id)],
    );
  });

  test('ORIGINATOR_ID / @ORIGIN_ID / >ID filters find companies by their external ids', async () => {
    const { client } = await oauthClient();
    const prefix = uniqueName('find');
    const out = await client.batch(adds(prefix, 0, 5));
    const ids = Object.values(out.result).map(Number);
    const found = await client.call<CrmCompanyFields[]>('crm.company.list', {
      filter: { ORIGINATOR_ID: 'glyms', '@ORIGIN_ID': [`${prefix}:1`, `${prefix}:3`, `${prefix}:404`] },
      select: ['ID', 'ORIGIN_ID'],
    });
    assert.deepEqual(
      found.map((c) => c.ORIGIN_ID),
      [`${prefix}:1`, `${prefix}:3`],
    );
    const later = await client.call<CrmCompanyFields[]>('crm.company.list', {
      filter: { '>ID': ids[2], '%ORIGIN_ID': prefix },
      select: ['ID'],
      start: -1,
    });
    assert.deepEqual(
      later.map((c) => Number(c.ID)),
      ids.slice(3),
    );
  });

  test('catalog: sections, products by xmlId, price types and prices behave as the catalog API does', async () => {
    const { client } = await oauthClient();
    const { catalogs } = await client.call<{ catalogs: { iblockId: number; productIblockId: number | null }[] }>(
      'catalog.catalog.list',
    );
    const iblockId = catalogs.find((c) => c.productIblockId === null)!.iblockId;
    const { section } = await client.call<{ section: { id: number } }>('catalog.section.add', {
      fields: { iblockId, name: 'Servicios', xmlId: 'sec-1' },
    });
    const xmlId = uniqueName('srv-');
    const out = await client.batch({
      add: {
        method: 'catalog.product.add',
        params: { fields: { iblockId, name: 'Análisis de suelo', xmlId, active: 'Y', iblockSectionId: section.id } },
      },
      price: {
        method: 'catalog.price.add',
        params: {
          fields: { productId: '$result[add][element][id]', catalogGroupId: 1, price: 150.5, currency: 'PEN' },
        },
      },
    });
    assert.deepEqual(out.errors, {});
    await assert.rejects(
      client.call('catalog.product.list', { filter: { iblockId }, select: ['name'] }),
      (e: BitrixApiError) => e.status === 400,
    );
    const { products } = await client.call<{ products: { id: number; xmlId: string; active: string }[] }>(
      'catalog.product.list',
      { filter: { iblockId, xmlId }, select: ['id', 'iblockId', 'xmlId', 'active'] },
    );
    assert.equal(products.length, 1);
    const productId = products[0]!.id;
    const { prices } = await client.call<{ prices: { id: number; price: number; catalogGroupId: number }[] }>(
      'catalog.price.list',
      { filter: { productId, catalogGroupId: 1 } },
    );
    assert.deepEqual(
      prices.map((p) => p.price),
      [150.5],
    );
    await client.call('catalog.price.update', { id: prices[0]!.id, fields: { price: 175, currency: 'PEN' } });
    await assert.rejects(
      client.call('catalog.price.add', { fields: { productId, catalogGroupId: 1, price: 1, currency: 'PEN' } }),
      (e: BitrixApiError) => e.status === 400,
    );
    await client.call('catalog.price.modify', {
      fields: { product: { id: productId, prices: [{ catalogGroupId: 2, price: 120, currency: 'PEN' }] } },
    });
    assert.deepEqual(
      [...fake.prices.values()].filter((p) => p.productId === productId).map((p) => [p.catalogGroupId, p.price]),
      [[2, 120]],
    );
    await client.call('catalog.product.update', { id: productId, fields: { active: 'N' } });
    assert.equal(
      (await client.call<{ product: { active: string } }>('catalog.product.get', { id: productId })).product.active,
      'N',
    );
  });

  test('a batch inside a batch is refused', async () => {
    const { client } = await oauthClient();
    await assert.rejects(
      client.batch({ inner: { method: 'batch', params: { cmd: { a: 'crm.status.list' } } } }),
      (e: BitrixApiError) => e.code === 'ERROR_BATCH_METHOD_NOT_ALLOWED' && e.status === 405,
    );
  });
});
