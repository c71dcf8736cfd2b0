import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, encodeToken, StreamNames } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { useTestGateway } from '../testing.js';

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
