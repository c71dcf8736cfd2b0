import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeEvent, encodeToken, StreamNames } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { signToken, TokenRevocations } from '@puente/runtime';
import { TEST_AGENT_TOKEN_SECRET, useTestGateway } from '../testing.js';

const gw = useTestGateway();

const headers = { authorization: 'Bearer test-api-token', 'content-type': 'application/json' };

test('command API - a send request queues whatsapp.send_message.v1 on COMMANDS and answers 202; its idempotency key makes a retry the same command', async () => {
  const session = uniqueName('ventas-');
  const url = `${gw.url}/api/whatsapp/${session}/messages`;
  const body = JSON.stringify({
    to: '34612345678@s.whatsapp.net',
    text: 'Su pedido está listo ✅',
    idempotencyKey: 'order-8812',
  });
  const first = await fetch(url, { method: 'POST', headers, body });
  assert.equal(first.status, 202);
  const answer = (await first.json()) as { commandId: string; duplicate: boolean; requestId: string };
  assert.equal(answer.duplicate, false);
  const retry = (await (await fetch(url, { method: 'POST', headers, body })).json()) as {
    commandId: string;
    duplicate: boolean;
  };
  assert.equal(retry.commandId, answer.commandId);
  assert.equal(retry.duplicate, true);
  const subject = `cmd.whatsapp.send_message.${encodeToken(session)}`;
  const message = await gw.bus.jsm.streams.getMessage(StreamNames.COMMANDS, { last_by_subj: subject });
  const event = decodeEvent(message.data);
  assert.equal(event.type, 'whatsapp.send_message.v1');
  if (event.type === 'whatsapp.send_message.v1') {
    assert.equal(event.data.commandId, answer.commandId);
    assert.equal(event.data.text, 'Su pedido está listo ✅');
  }
  const info = await gw.bus.jsm.streams.info(StreamNames.COMMANDS, { subjects_filter: subject });
  assert.equal(info.state.subjects?.[subject], 1);
});

test('command API - mark-read queues whatsapp.mark_read.v1; bad token 401, bad body 400 naming the field', async () => {
  const session = uniqueName('ventas-');
  const chat = '34612345678@s.whatsapp.net';
  const read = await fetch(`${gw.url}/api/whatsapp/${session}/chats/${encodeURIComponent(chat)}/read`, {
    method: 'POST',
    headers,
  });
  assert.equal(read.status, 202);
  const message = await gw.bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
    last_by_subj: `cmd.whatsapp.mark_read.${encodeToken(session)}`,
  });
  const event = decodeEvent(message.data);
  assert.equal(event.type === 'whatsapp.mark_read.v1' && event.data.chatId, chat);

  const unauthorized = await fetch(`${gw.url}/api/whatsapp/${session}/messages`, {
    method: 'POST',
    headers: { ...headers, authorization: 'Bearer nope' },
    body: '{}',
  });
  assert.equal(unauthorized.status, 401);
  const bad = await fetch(`${gw.url}/api/whatsapp/${session}/messages`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ to: '34612345678' }),
  });
  assert.equal(bad.status, 400);
  const problem = (await bad.json()) as { errors: { path: string }[] };
  assert.deepEqual(
    problem.errors.map((e) => e.path),
    ['text'],
  );
});

/** An agent's access token, as `puente token --send` mints it (realtime's key). */
const agentToken = (sub: string, send?: string[], ttlSeconds = 600) =>
  signToken({ sub, channels: ['whatsapp.>'], ...(send ? { send } : {}) }, TEST_AGENT_TOKEN_SECRET, ttlSeconds);

const asAgent = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

async function lastSend(session: string) {
  const message = await gw.bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
    last_by_subj: `cmd.whatsapp.send_message.${encodeToken(session)}`,
  });
  const event = decodeEvent(message.data);
  assert.equal(event.type, 'whatsapp.send_message.v1');
  return event.type === 'whatsapp.send_message.v1' ? event.data : undefined;
}

test('command API - an agent token whose send claim covers the session sends and marks read; the command records sentBy from the token, never the body', async () => {
  const session = uniqueName('ventas-');
  const sub = uniqueName('ana-');
  for (const send of [[session], ['*']]) {
    const token = agentToken(sub, send);
    const sent = await fetch(`${gw.url}/api/whatsapp/${session}/messages`, {
      method: 'POST',
      headers: asAgent(token),
      body: JSON.stringify({ to: '34612345678', text: 'Hola', sentBy: 'someone-else' }),
    });
    assert.equal(sent.status, 202, await sent.clone().text());
    const { commandId } = (await sent.json()) as { commandId: string };
    const data = await lastSend(session);
    assert.equal(data?.commandId, commandId);
    assert.equal(data?.sentBy, sub);
    const read = await fetch(`${gw.url}/api/whatsapp/${session}/chats/34612345678/read`, {
      method: 'POST',
      headers: asAgent(token),
    });
    assert.equal(read.status, 202);
  }
  // An API token names no agent.
  await fetch(`${gw.url}/api/whatsapp/${session}/messages`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ to: '34612345678', text: 'Hola' }),
  });
  assert.equal((await lastSend(session))?.sentBy, undefined);
});

test('command API - an agent token without rights on the session is 403 naming it; expired or badly signed is 401', async () => {
  const session = uniqueName('ventas-');
  const sub = uniqueName('ana-');
  const body = JSON.stringify({ to: '34612345678', text: 'Hola' });
  const post = (token: string) =>
    fetch(`${gw.url}/api/whatsapp/${session}/messages`, { method: 'POST', headers: asAgent(token), body });
  for (const token of [agentToken(sub, ['compras']), agentToken(sub)]) {
    const forbidden = await post(token);
    assert.equal(forbidden.status, 403);
    const problem = (await forbidden.json()) as { code: string; session: string; detail?: string; title?: string };
    assert.equal(problem.session, session);
    assert.match(JSON.stringify(problem), new RegExp(`session ${session}`));
  }
  const read = await fetch(`${gw.url}/api/whatsapp/${session}/chats/34612345678/read`, {
    method: 'POST',
    headers: asAgent(agentToken(sub, ['compras'])),
  });
  assert.equal(read.status, 403);

  const expired = signToken({ sub, channels: ['>'], send: ['*'] }, TEST_AGENT_TOKEN_SECRET, 60, Date.now() - 120_000);
  const badlySigned = signToken({ sub, channels: ['>'], send: ['*'] }, 'another-key');
  for (const [token, reason] of [
    [expired, 'token expired'],
    [badlySigned, 'bad signature'],
  ] as const) {
    const refused = await post(token);
    assert.equal(refused.status, 401);
    assert.match(await refused.text(), new RegExp(reason));
  }
});

test('command API - a revoked agent token (by id or by subject) is refused within the cache time; another subject’s is not', async () => {
  const session = uniqueName('ventas-');
  const revocations = new TokenRevocations(gw.bus);
  const body = JSON.stringify({ to: '34612345678', text: 'Hola' });
  const post = (token: string) =>
    fetch(`${gw.url}/api/whatsapp/${session}/messages`, { method: 'POST', headers: asAgent(token), body });
  const ana = uniqueName('ana-');
  const jti = randomUUID();
  const byId = signToken({ sub: ana, channels: ['>'], send: [session], jti }, TEST_AGENT_TOKEN_SECRET);
  const anaOther = agentToken(ana, [session]);
  const luis = agentToken(uniqueName('luis-'), [session]);
  assert.equal((await post(byId)).status, 202);
  await revocations.revokeToken(jti);
  const refusedAfter = async (token: string) => {
    const started = Date.now();
    for (;;) {
      const answer = await post(token);
      if (answer.status === 401) {
        assert.match(await answer.text(), /token revoked/);
        return Date.now() - started;
      }
      assert.equal(answer.status, 202);
      assert.ok(Date.now() - started < 2_500, 'still accepted after the cache time');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await refusedAfter(byId);
  assert.equal((await post(anaOther)).status, 202);
  await revocations.revokeSubject(ana);
  await refusedAfter(anaOther);
  assert.equal((await post(luis)).status, 202);
});

test('command API - sync now queues whatsapp.sync_session.v1 on COMMANDS with the agent; an agent without rights on the session gets 403', async () => {
  const session = uniqueName('ventas-');
  const sub = uniqueName('ana-');
  const url = `${gw.url}/api/whatsapp/${session}/sync`;
  const queued = await fetch(url, { method: 'POST', headers: asAgent(agentToken(sub, [session])) });
  assert.equal(queued.status, 202);
  const { commandId } = (await queued.json()) as { commandId: string };
  const message = await gw.bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
    last_by_subj: `cmd.whatsapp.sync_session.${encodeToken(session)}`,
  });
  const event = decodeEvent(message.data);
  assert.equal(event.type, 'whatsapp.sync_session.v1');
  assert.deepEqual(
    event.type === 'whatsapp.sync_session.v1' ? [event.data.commandId, event.data.session, event.data.sentBy] : [],
    [commandId, session, sub],
  );
  const byApiToken = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ idempotencyKey: 'k1' }) });
  assert.equal(byApiToken.status, 202);
  const forbidden = await fetch(url, { method: 'POST', headers: asAgent(agentToken(sub, ['compras'])) });
  assert.equal(forbidden.status, 403);
  assert.equal(((await forbidden.json()) as { session: string }).session, session);
});

test('command API - media by the hash of a stored file is queued as such; a url and a hash together, or neither, is 400', async () => {
  const session = uniqueName('ventas-');
  const url = `${gw.url}/api/whatsapp/${session}/messages`;
  const hash = 'ab'.repeat(32);
  const media = { type: 'document', hash, mimeType: 'application/pdf', fileName: 'presupuesto.pdf' };
  const sent = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ to: '34612345678', text: 'El presupuesto', media }),
  });
  assert.equal(sent.status, 202, await sent.clone().text());
  const event = decodeEvent(
    (
      await gw.bus.jsm.streams.getMessage(StreamNames.COMMANDS, {
        last_by_subj: `cmd.whatsapp.send_message.${encodeToken(session)}`,
      })
    ).data,
  );
  assert.deepEqual(event.type === 'whatsapp.send_message.v1' ? event.data.media : undefined, media);
  for (const bad of [
    { ...media, url: 'https://example.com/presupuesto.pdf' },
    { type: 'document', fileName: 'x.pdf' },
    { ...media, hash: 'not-a-hash' },
  ]) {
    const refused = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ to: '34612345678', media: bad }),
    });
    assert.equal(refused.status, 400, JSON.stringify(bad));
  }
});
