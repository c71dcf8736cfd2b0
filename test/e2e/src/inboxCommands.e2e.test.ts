import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeEvent, encodeToken, StreamNames } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { freePort } from '@puente/stack';
import { signToken } from '@puente/runtime';
import { startTestGateway } from '@puente/gateway/testing';
import { startTestRealtime, TEST_REALTIME_SECRET } from '@puente/realtime/testing';

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  gateway = await startTestGateway(bus);
  rt = await startTestRealtime(bus, database.db, { REALTIME_GATEWAY_URL: gateway.url });
});
after(async () => {
  await rt.close();
  await gateway.close();
  await database.drop();
  await bus.close();
});

/** An agent's token, as `puente token --send` mints it; realtime and the gateway share its key. */
const agent = (sub: string, send: string[]) =>
  signToken({ sub, channels: ['whatsapp.>'], send }, TEST_REALTIME_SECRET, 600);

const post = (base: string, path: string, token: string, body?: unknown) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

describe('inbox commands through realtime', () => {
  test('an agent with send rights sends, marks read and syncs through realtime; the commands reach COMMANDS naming the agent', async () => {
    const session = uniqueName('ventas-');
    const sub = uniqueName('ana-');
    const token = agent(sub, [session]);
    const sent = await post(rt.url, `/commands/whatsapp/${session}/messages`, token, {
      to: '34612345678',
      text: 'Hola desde el inbox',
      idempotencyKey: 'k-1',
    });
    assert.equal(sent.status, 202);
    const { commandId } = (await sent.json()) as { commandId: string };
    const message = await bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
      last_by_subj: `cmd.whatsapp.send_message.${encodeToken(session)}`,
    });
    const event = decodeEvent(message.data);
    assert.deepEqual(
      event.type === 'whatsapp.send_message.v1' ? [event.data.commandId, event.data.text, event.data.sentBy] : [],
      [commandId, 'Hola desde el inbox', sub],
    );
    const chat = encodeURIComponent('34612345678@s.whatsapp.net');
    assert.equal((await post(rt.url, `/commands/whatsapp/${session}/chats/${chat}/read`, token)).status, 202);
    const read = decodeEvent(
      (
        await bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
          last_by_subj: `cmd.whatsapp.mark_read.${encodeToken(session)}`,
        })
      ).data,
    );
    assert.equal(read.type === 'whatsapp.mark_read.v1' && read.data.chatId, '34612345678@s.whatsapp.net');
    assert.equal((await post(rt.url, `/commands/whatsapp/${session}/sync`, token)).status, 202);
  });

  test("without rights on the session the gateway's 403 and its problem body pass through; no token is the gateway's 401", async () => {
    const session = uniqueName('ventas-');
    const forbidden = await post(
      rt.url,
      `/commands/whatsapp/${session}/messages`,
      agent(uniqueName('luis-'), ['compras']),
      {
        to: '34612345678',
        text: 'x',
      },
    );
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.headers.get('content-type') ?? '', /problem\+json/);
    const problem = (await forbidden.json()) as { code: string; session: string };
    assert.deepEqual([problem.code, problem.session], ['forbidden', session]);
    const none = await fetch(`${rt.url}/commands/whatsapp/${session}/messages`, { method: 'POST', body: '{}' });
    assert.equal(none.status, 401);
    const info = await bus.jsm.streams.info(StreamNames.COMMANDS, {
      subjects_filter: `cmd.whatsapp.*.${encodeToken(session)}`,
    });
    assert.equal(Object.keys(info.state.subjects ?? {}).length, 0, 'nothing was queued');
  });

  test('a body over the cap is 413 before the gateway is asked; a path outside the command API is 404', async () => {
    const token = agent(uniqueName('ana-'), ['*']);
    const big = await post(rt.url, '/commands/whatsapp/ventas/messages', token, 'x'.repeat(64 * 1024 + 1));
    assert.equal(big.status, 413);
    // Raw request: fetch would resolve the dot segments before sending.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${rt.url}/commands/%2e%2e/webhooks/inboxhub`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 404);
  });

  test('a gateway that cannot be reached is 502, one that does not answer in time 504, each with a problem body', async () => {
    const token = agent(uniqueName('ana-'), ['*']);
    const closed = await startTestRealtime(bus, database.db, {
      REALTIME_GATEWAY_URL: `http://127.0.0.1:${await freePort()}`,
    });
    const silent: Server = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const slow = await startTestRealtime(bus, database.db, {
      REALTIME_GATEWAY_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      REALTIME_GATEWAY_TIMEOUT_MS: '300',
    });
    try {
      for (const [server, status, code] of [
        [closed, 502, 'bad_gateway'],
        [slow, 504, 'gateway_timeout'],
      ] as const) {
        const answer = await post(server.url, '/commands/whatsapp/ventas/messages', token, { to: '1', text: 'x' });
        assert.equal(answer.status, status);
        assert.equal(((await answer.json()) as { code: string }).code, code);
      }
    } finally {
      await closed.close();
      await slow.close();
      silent.closeAllConnections();
      silent.close();
    }
  });
});
