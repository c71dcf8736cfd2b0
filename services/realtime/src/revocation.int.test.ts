import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { signToken, TokenRevocations } from '@puente/runtime';
import { startTestRealtime, TestSocket, TEST_REALTIME_SECRET } from './testing.js';

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
/** What `puente token revoke` does, from another connection (as the CLI would). */
let revoker: TokenRevocations;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  rt = await startTestRealtime(bus, database.db);
  revoker = new TokenRevocations(bus);
});
after(async () => {
  await rt.close();
  await database.drop();
  await bus.close();
});

/** How each of realtime's doors answers a token: the WebSocket, an `/api` page and `/media`. */
async function doors(token: string): Promise<{ ws: string; api: number; apiMessage: string; media: number }> {
  const socket = await TestSocket.open(`${rt.wsUrl}?token=${token}`);
  const first = await socket.next((f) => f.op === 'ready' || f.op === 'error');
  socket.close();
  const api = await fetch(`${rt.url}/api/whatsapp.sessions`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await api.json()) as { message?: string };
  const media = await fetch(`${rt.url}/media/s1/no-such-message`, { headers: { authorization: `Bearer ${token}` } });
  await media.body?.cancel();
  return {
    ws: first.op === 'ready' ? 'ready' : `${first.code}: ${first.message}`,
    api: api.status,
    apiMessage: body.message ?? '',
    media: media.status,
  };
}

const ACCEPTED = { ws: 'ready', api: 200, apiMessage: '', media: 404 };
const REFUSED = { ws: 'unauthorized: token revoked', api: 401, apiMessage: 'token revoked', media: 401 };

/** Polls until the doors answer `want`, for at most the revocation cache time and a margin; returns how long it took. */
async function until(token: string, want: typeof ACCEPTED): Promise<number> {
  const started = Date.now();
  for (;;) {
    const got = await doors(token);
    if (JSON.stringify(got) === JSON.stringify(want)) return Date.now() - started;
    if (Date.now() - started > 3_000) assert.deepEqual(got, want);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('realtime - token revocation', () => {
  test('a revoked jti is refused within the cache time on the WebSocket, /api and /media; the same subject’s other token is not', async () => {
    const sub = uniqueName('agent-');
    const jti = randomUUID();
    const revoked = signToken({ sub, channels: ['>'], jti }, TEST_REALTIME_SECRET);
    const other = signToken({ sub, channels: ['>'] }, TEST_REALTIME_SECRET);
    assert.deepEqual(await doors(revoked), ACCEPTED);
    await revoker.revokeToken(jti);
    assert.ok((await until(revoked, REFUSED)) < 2_500);
    assert.deepEqual(await doors(other), ACCEPTED);
  });

  test('revoking a subject refuses every token it was issued before, not another subject’s', async () => {
    const sub = uniqueName('agent-');
    const first = signToken({ sub, channels: ['>'] }, TEST_REALTIME_SECRET);
    const second = signToken({ sub, channels: ['>'] }, TEST_REALTIME_SECRET);
    const bystander = signToken({ sub: uniqueName('other-'), channels: ['>'] }, TEST_REALTIME_SECRET);
    assert.deepEqual(await doors(first), ACCEPTED);
    await revoker.revokeSubject(sub);
    assert.ok((await until(first, REFUSED)) < 2_500);
    assert.deepEqual(await doors(second), REFUSED);
    assert.deepEqual(await doors(bystander), ACCEPTED);
    // A token issued after the revocation (a later second) is accepted again.
    const later = signToken({ sub, channels: ['>'] }, TEST_REALTIME_SECRET, 3600, Date.now() + 2_000);
    assert.deepEqual(await doors(later), ACCEPTED);
  });

  test('an open connection closes with 4001 "token revoked" when its auth frame carries a revoked token', async () => {
    const jti = randomUUID();
    await revoker.revokeToken(jti);
    const socket = await TestSocket.open(rt.wsUrl);
    socket.send({
      op: 'auth',
      token: signToken({ sub: uniqueName('agent-'), channels: ['>'], jti }, TEST_REALTIME_SECRET),
    });
    assert.equal((await socket.next((f) => f.op === 'error')).message, 'token revoked');
    assert.deepEqual(await socket.closed, { code: 4001, reason: 'token revoked' });
  });

  test('a WebSocket already open closes at once when its token, or its subject, is revoked; others stay open', async () => {
    const sub = uniqueName('agent-');
    const open = async (subject: string) => {
      const jti = randomUUID();
      const token = signToken({ sub: subject, channels: ['whatsapp.>'], jti }, TEST_REALTIME_SECRET, 600);
      const socket = await TestSocket.open(`${rt.wsUrl}?token=${token}`);
      await socket.next((f) => f.op === 'ready');
      return { jti, socket };
    };
    const [byId, bySubject, other] = [await open(sub), await open(`${sub}-b`), await open(`${sub}-c`)];
    const started = Date.now();
    await revoker.revokeToken(byId.jti);
    assert.deepEqual(await byId.socket.closed, { code: 4001, reason: 'token revoked' });
    await revoker.revokeSubject(`${sub}-b`);
    assert.deepEqual(await bySubject.socket.closed, { code: 4001, reason: 'token revoked' });
    assert.ok(Date.now() - started < 1_500, `closed within ${Date.now() - started} ms, not at the next check`);
    other.socket.send({ op: 'subscribe', channel: 'whatsapp.sessions' });
    await other.socket.next((f) => f.op === 'snapshot');
    other.socket.close();
  });
});
