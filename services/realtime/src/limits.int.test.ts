import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime, TestSocket } from './testing.js';

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
});
after(async () => {
  await database.drop();
  await bus.close();
});

/** The status a WebSocket upgrade gets (101 when it is upgraded; the socket is closed at once). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url.replace('ws://', 'http://'), {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('WebSocket connections are capped per client address (429) and in total (503), and a closed one gives its place back', async () => {
  const rt = await startTestRealtime(bus, database.db, {
    REALTIME_MAX_CONNECTIONS_PER_ADDRESS: '3',
    REALTIME_MAX_CONNECTIONS: '5',
    REALTIME_TRUST_PROXY: 'true',
  });
  const sockets: TestSocket[] = [];
  const open = async (forwardedFor: string) => {
    const socket = await TestSocket.open(`${rt.wsUrl}?token=${rt.token(['>'])}`, {
      headers: { 'x-forwarded-for': forwardedFor },
    });
    await socket.next((f) => f.op === 'ready');
    sockets.push(socket);
    return socket;
  };
  try {
    // Behind the trusted proxy, the address is the last X-Forwarded-For entry.
    for (let i = 0; i < 3; i++) await open('198.51.100.7, 203.0.113.1');
    const refused = await upgradeStatus(rt.wsUrl, { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' });
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.body) as { code: string }).code, 'too_many_connections');
    // Another address still gets in, up to the total.
    await open('203.0.113.2');
    await open('203.0.113.3');
    assert.equal((await upgradeStatus(rt.wsUrl, { 'x-forwarded-for': '203.0.113.4' })).status, 503);
    // One closes: its address may connect again.
    sockets.shift()!.close();
    let again = 0;
    for (let i = 0; i < 100 && again !== 101; i++) {
      again = (await upgradeStatus(rt.wsUrl, { 'x-forwarded-for': '203.0.113.1' })).status;
      if (again !== 101) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(again, 101, 'a closed connection gives its place back');
  } finally {
    for (const socket of sockets) socket.close();
    await rt.close();
  }
});

test('/stats answers only a token that reads every channel, from the Authorization header', async () => {
  const rt = await startTestRealtime(bus, database.db);
  try {
    assert.equal((await fetch(`${rt.url}/stats`)).status, 401);
    assert.equal((await fetch(`${rt.url}/stats?token=${rt.token(['>'])}`)).status, 401, 'never from the URL');
    const narrow = await fetch(`${rt.url}/stats`, { headers: { authorization: `Bearer ${rt.token(['kissflow.>'])}` } });
    assert.equal(narrow.status, 403);
    const ok = await fetch(`${rt.url}/stats`, { headers: { authorization: `Bearer ${rt.token(['>'])}` } });
    assert.equal(ok.status, 200);
    assert.equal(typeof ((await ok.json()) as { connections: number }).connections, 'number');
  } finally {
    await rt.close();
  }
});
