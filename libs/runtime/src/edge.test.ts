import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  createHttpServer,
  devDashboardToken,
  HttpError,
  problemOutcome,
  RouteTable,
  sendJson,
  signJwt,
  signToken,
  verifyJwt,
  verifyToken,
  type RouteSpec,
} from './index.js';
import { inject } from './testing/index.js';

describe('runtime - route table', () => {
  const seen: { params: Record<string, string>; path: string }[] = [];
  const routes: RouteSpec[] = [
    {
      method: 'POST',
      path: '/api/whatsapp/:session/messages',
      handler: (_req, res, c) => (seen.push(c), sendJson(res, 202, { session: c.params.session })),
    },
    {
      method: 'POST',
      path: '/api/whatsapp/:session/chats/:chat/read',
      handler: (_req, res, c) => sendJson(res, 202, c.params),
    },
    {
      method: 'POST',
      path: '/webhooks/evolution/:event([a-z0-9-]+)?',
      handler: (_req, res, c) => sendJson(res, 200, c.params),
    },
    { method: 'GET', path: '/webhooks/whatsapp-cloud', handler: (_req, res) => sendJson(res, 200, { verify: true }) },
    {
      method: 'POST',
      path: '/webhooks/whatsapp-cloud',
      handler: () => Promise.reject(new HttpError('unauthorized', 'bad signature')),
    },
    { method: 'GET', path: '/api/*channel', handler: (_req, res, c) => sendJson(res, 200, c.params) },
    { method: 'GET', path: '/stats', handler: (_req, res) => sendJson(res, 200, { ok: true }) },
  ];
  const server = createHttpServer({ checks: {}, route: new RouteTable(routes).route });
  const withHead = createHttpServer({
    checks: {},
    route: new RouteTable(routes, { headForGet: true, problemHeaders: { 'cache-control': 'no-store' } }).route,
  });

  test('path parameters are percent-decoded; a bad escape is kept as given', async () => {
    const answer = await inject(server, { method: 'POST', url: '/api/whatsapp/ventas%20norte/messages?x=1' });
    assert.equal(answer.status, 202);
    assert.deepEqual(answer.json(), { session: 'ventas norte' });
    assert.equal(seen.at(-1)!.path, '/api/whatsapp/ventas%20norte/messages');
    assert.deepEqual((await inject(server, { method: 'POST', url: '/api/whatsapp/s1/chats/%E0%A4%A/read' })).json(), {
      session: 's1',
      chat: '%E0%A4%A',
    });
    assert.deepEqual(
      (await inject(server, { method: 'POST', url: '/api/whatsapp/s1/chats/34600%40s.whatsapp.net/read' })).json(),
      { session: 's1', chat: '34600@s.whatsapp.net' },
    );
  });

  test('an optional last segment matches with and without it, and only what its constraint allows', async () => {
    assert.deepEqual((await inject(server, { method: 'POST', url: '/webhooks/evolution' })).json(), {});
    assert.deepEqual((await inject(server, { method: 'POST', url: '/webhooks/evolution/messages-upsert' })).json(), {
      event: 'messages-upsert',
    });
    assert.equal((await inject(server, { method: 'POST', url: '/webhooks/evolution/MESSAGES_UPSERT' })).status, 404);
    assert.equal((await inject(server, { method: 'POST', url: '/webhooks/evolution/a/b' })).status, 404);
  });

  test('a rest parameter takes the rest of the path, slashes included', async () => {
    assert.deepEqual((await inject(server, { url: '/api/kissflow.Orders' })).json(), { channel: 'kissflow.Orders' });
    assert.deepEqual((await inject(server, { url: '/api/a/b%2Fc' })).json(), { channel: 'a/b/c' });
  });

  test('a known path with another method answers 405 with Allow; an unknown path the JSON 404', async () => {
    const wrong = await inject(server, { method: 'DELETE', url: '/webhooks/whatsapp-cloud' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET, POST');
    assert.equal(wrong.headers['content-type'], 'application/problem+json');
    assert.deepEqual(wrong.json(), {
      type: 'https://puente.dev/problems/method_not_allowed',
      title: 'method not allowed',
      status: 405,
      code: 'method_not_allowed',
      detail: 'use GET or POST',
      requestId: wrong.headers['x-request-id'],
    });
    assert.equal((await inject(server, { method: 'HEAD', url: '/stats' })).status, 405);
    const missing = await inject(server, { method: 'GET', url: '/nowhere?x=1', headers: { 'x-request-id': 'req-1' } });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json(), { error: 'not_found', message: 'no route for GET /nowhere', requestId: 'req-1' });
  });

  test('HEAD is answered by the GET handler where asked, and Allow says so', async () => {
    const head = await inject(withHead, { method: 'HEAD', url: '/stats' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-type'], 'application/json');
    const post = await inject(withHead, { method: 'POST', url: '/stats' });
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal(post.headers['cache-control'], 'no-store');
  });

  test('a thrown HttpError is answered as problem details with its status; another error as the 500', async () => {
    const refused = await inject(server, {
      method: 'POST',
      url: '/webhooks/whatsapp-cloud',
      headers: { 'x-request-id': 'req-2' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.json(), {
      type: 'https://puente.dev/problems/unauthorized',
      title: 'unauthorized',
      status: 401,
      code: 'unauthorized',
      detail: 'bad signature',
      requestId: 'req-2',
    });
    const failing = createHttpServer({
      checks: {},
      route: new RouteTable([
        {
          method: 'GET',
          path: '/boom',
          handler: () => {
            throw new Error('boom');
          },
        },
      ]).route,
    });
    const broken = await inject(failing, { url: '/boom', headers: { 'x-request-id': 'req-3' } });
    assert.equal(broken.status, 500);
    assert.deepEqual(broken.json(), { error: 'internal', requestId: 'req-3' });
  });

  test('a path declared twice for one method is refused when the table is built', () => {
    assert.throws(
      () =>
        new RouteTable([
          { method: 'GET', path: '/a', handler: () => undefined },
          { method: 'get', path: '/a', handler: () => undefined },
        ]),
      /GET \/a is declared twice/,
    );
    assert.throws(
      () => new RouteTable([{ method: 'GET', path: '/:a?/b', handler: () => undefined }]),
      /only the last parameter can be optional/,
    );
  });
});

describe('runtime - problem details', () => {
  test('the status comes from the code; the metric outcome from the status', () => {
    const outcomes = (
      [
        'unauthorized',
        'payload_too_large',
        'bus_unavailable',
        'contract_violation',
        'unknown_channel',
        'internal',
      ] as const
    ).map((code) => {
      const error = new HttpError(code, code);
      return [code, error.status, problemOutcome(error)];
    });
    assert.deepEqual(outcomes, [
      ['unauthorized', 401, 'unauthorized'],
      ['payload_too_large', 413, 'too_large'],
      ['bus_unavailable', 503, 'unavailable'],
      ['contract_violation', 400, 'invalid'],
      ['unknown_channel', 404, 'invalid'],
      ['internal', 500, 'error'],
    ]);
    assert.equal(problemOutcome(new Error('not an HttpError')), 'error');
  });
});

describe('runtime - JWT', () => {
  const now = Date.UTC(2025, 0, 1);
  const seconds = now / 1000;
  const Any = z.unknown();

  test('HS256 with any secret of a rotation; another secret, a changed payload, none and other algorithms are refused', async () => {
    const token = signJwt({ sub: 'a', exp: seconds + 60 }, 'new');
    assert.deepEqual(await verifyJwt(token, { secrets: ['old', 'new'], claims: Any, now }), {
      ok: true,
      claims: { sub: 'a', exp: seconds + 60 },
    });
    assert.deepEqual(await verifyJwt(token, { secrets: ['other'], claims: Any, now }), {
      ok: false,
      reason: 'bad signature',
    });
    const [header, , signature] = token.split('.');
    const changed = `${header}.${Buffer.from(JSON.stringify({ sub: 'b', exp: seconds + 60 })).toString('base64url')}.${signature}`;
    assert.deepEqual(await verifyJwt(changed, { secrets: ['new'], claims: Any, now }), {
      ok: false,
      reason: 'bad signature',
    });
    for (const alg of ['none', 'HS512', 'RS256']) {
      const forged = `${Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url')}.${token.split('.')[1]}.${alg === 'none' ? '' : signature}`;
      assert.deepEqual(
        await verifyJwt(forged, { secrets: ['new'], claims: Any, now }),
        { ok: false, reason: 'only HS256 tokens are accepted' },
        alg,
      );
    }
    assert.deepEqual(await verifyJwt('not.a.jwt!', { secrets: ['new'], claims: Any, now }), {
      ok: false,
      reason: 'not a JWT',
    });
  });

  test('exp and nbf hold within the clock skew; the claims schema is applied', async () => {
    const expired = signJwt({ exp: seconds - 30 }, 's');
    assert.equal((await verifyJwt(expired, { secrets: ['s'], claims: Any, now })).ok, false);
    assert.equal((await verifyJwt(expired, { secrets: ['s'], claims: Any, now, clockSkewSeconds: 60 })).ok, true);
    assert.deepEqual(
      await verifyJwt(signJwt({ nbf: seconds + 120 }, 's'), { secrets: ['s'], claims: Any, now, clockSkewSeconds: 60 }),
      { ok: false, reason: 'token not yet valid' },
    );
    assert.deepEqual(
      await verifyJwt(signJwt({ sub: 'a' }, 's'), {
        secrets: ['s'],
        claims: z.object({ sub: z.string(), exp: z.number() }),
        now,
      }),
      { ok: false, reason: 'claims: exp Invalid input: expected number, received undefined' },
    );
  });

  test('a whsec_ secret is a base64 key when asked, its UTF-8 bytes otherwise', async () => {
    const secret = `whsec_${Buffer.from('key bytes').toString('base64')}`;
    const token = signJwt({ app: 'evolution' }, secret, { standardWebhooksSecrets: true });
    assert.equal((await verifyJwt(token, { secrets: ['key bytes'], claims: Any, now })).ok, true);
    assert.equal(
      (await verifyJwt(token, { secrets: [secret], claims: Any, now, standardWebhooksSecrets: true })).ok,
      true,
    );
    assert.equal((await verifyJwt(token, { secrets: [secret], claims: Any, now })).ok, false);
  });

  test('an access token carries the optional send and roles claims, its id and when it was issued', async () => {
    const token = signToken(
      { sub: 'ana', channels: ['whatsapp.>'], send: ['ventas'], roles: ['operator'], jti: 'tok-1' },
      's',
      60,
      now,
    );
    assert.deepEqual(await verifyToken(token, ['s'], now), {
      ok: true,
      claims: {
        sub: 'ana',
        exp: seconds + 60,
        iat: seconds,
        jti: 'tok-1',
        channels: ['whatsapp.>'],
        send: ['ventas'],
        roles: ['operator'],
      },
    });
  });

  test('a minted token gets a random id unless one is given', async () => {
    const ids = await Promise.all(
      [1, 2].map(async () => {
        const verified = await verifyToken(signToken({ sub: 'ana', channels: ['>'] }, 's', 60, now), ['s'], now);
        return verified.ok ? verified.claims.jti : undefined;
      }),
    );
    assert.match(ids[0] ?? '', /^[0-9a-f-]{36}$/);
    assert.notEqual(ids[0], ids[1]);
  });
});

test('the development dashboard token reads every channel and sends from every session (it shows the pairing QR)', async () => {
  const verified = await verifyToken(devDashboardToken('dev-secret'), ['dev-secret']);
  assert.ok(verified.ok);
  assert.deepEqual(
    [verified.claims.sub, verified.claims.channels, verified.claims.send],
    ['dev-dashboard', ['>'], ['*']],
  );
  assert.ok(verified.claims.exp - Math.floor(Date.now() / 1000) > 11 * 3600);
});
