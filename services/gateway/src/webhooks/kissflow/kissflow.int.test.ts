import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, encodeToken, StreamNames } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { useTestGateway } from '../../testing.js';

const gw = useTestGateway({ maxBodyBytes: 64 * 1024 });

const auth = (secret = 'test-kissflow-secret-current') => ({
  authorization: `Bearer ${secret}`,
  'content-type': 'application/json',
});
const post = (dataset: string, body: string | object, headers: Record<string, string> = auth()) =>
  fetch(`${gw.url}/webhooks/kissflow/${encodeURIComponent(dataset)}`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function stored(subject: string): Promise<number> {
  const info = await gw.bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

const row = (overrides: Record<string, unknown> = {}) => ({
  _id: 'Pk8dLs9_2Xq',
  Name: 'Contrato marco',
  _modified_at: '2025-10-15T10:30:01Z',
  'Cliente.RUC': '20512345678',
  Monto: 1250.5,
  Estado: 'Aprobado ✅',
  ...overrides,
});

describe('gateway - kissflow', () => {
  test('a row becomes kissflow.record.upserted.v1 on its dataset subject, answered 200 only after the ack', async () => {
    const dataset = uniqueName('DS_');
    const response = await post(dataset, row());
    assert.equal(response.status, 200);
    const body = (await response.json()) as { accepted: { id: string; duplicate: boolean }[]; requestId: string };
    assert.equal(body.accepted.length, 1);
    assert.equal(body.accepted[0]!.duplicate, false);
    assert.ok(body.requestId);
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    const message = await gw.bus.jsm.streams.getMessage(StreamNames.EVENTS, { last_by_subj: subject });
    const event = decodeEvent(message.data);
    assert.equal(event.type, 'kissflow.record.upserted.v1');
    assert.equal(event.id, body.accepted[0]!.id);
    if (event.type !== 'kissflow.record.upserted.v1') return;
    assert.equal(event.data.dataset, dataset);
    assert.equal(event.data.rowId, 'Pk8dLs9_2Xq');
    assert.equal(event.data.modifiedAt, '2025-10-15T10:30:01.000Z');
    assert.equal(event.data.origin, 'webhook');
    assert.deepEqual(event.data.fields, row());
  });

  test('the same delivery again, or the same row wrapped in {"row": ...}, is a duplicate stored once', async () => {
    const dataset = uniqueName('DS_');
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    const first = (await (await post(dataset, row())).json()) as { accepted: { id: string; duplicate: boolean }[] };
    const again = (await (await post(dataset, row())).json()) as { accepted: { id: string; duplicate: boolean }[] };
    const { _id, _modified_at, ...fields } = row();
    const wrapped = (await (
      await post(dataset, { event: 'dataset.row.updated', dataset_id: dataset, _id, _modified_at, row: fields })
    ).json()) as { accepted: { id: string; duplicate: boolean }[] };
    assert.equal(again.accepted[0]!.duplicate, true);
    assert.equal(wrapped.accepted[0]!.duplicate, true);
    assert.equal(again.accepted[0]!.id, first.accepted[0]!.id);
    assert.equal(await stored(subject), 1);
    // Two edits in the same second are two deliveries.
    const edited = (await (await post(dataset, row({ Monto: 99 }))).json()) as { accepted: { duplicate: boolean }[] };
    assert.equal(edited.accepted[0]!.duplicate, false);
    assert.equal(await stored(subject), 2);
  });

  test('wrong, missing or malformed credentials answer 401 before the body is parsed; a rotated secret still works', async () => {
    const dataset = uniqueName('DS_');
    const attempts: Record<string, string>[] = [
      auth('wrong-secret'),
      { 'content-type': 'application/json' },
      { authorization: 'Basic dGVzdA==' },
      { authorization: 'Bearer' },
    ];
    for (const headers of attempts) {
      const response = await post(dataset, '{not json', headers);
      assert.equal(response.status, 401, JSON.stringify(headers));
      const problem = (await response.json()) as { code: string; requestId: string };
      assert.equal(problem.code, 'unauthorized');
      assert.ok(problem.requestId);
    }
    assert.equal((await post(dataset, row(), auth('test-kissflow-secret-previous'))).status, 200);
    assert.equal(await stored(`evt.kissflow.record.upserted.${encodeToken(dataset)}`), 1);
  });

  test('malformed JSON and contract violations answer 400 naming the problem', async () => {
    const dataset = uniqueName('DS_');
    const malformed = await post(dataset, '{"_id": "x",');
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { code: string }).code, 'malformed_json');
    for (const [body, path] of [
      [{ Name: 'no id' }, '_id'],
      [{ row: { Name: 'no id' } }, 'row._id'],
      [[1, 2], '(body)'],
      [row({ _modified_at: 'yesterday' }), '_modified_at'],
    ] as const) {
      const response = await post(dataset, body);
      assert.equal(response.status, 400);
      assert.match(response.headers.get('content-type') ?? '', /application\/problem\+json/);
      const problem = (await response.json()) as { code: string; errors: { path: string }[] };
      assert.equal(problem.code, 'contract_violation');
      assert.equal(problem.errors[0]!.path, path);
    }
    assert.equal(await stored(`evt.kissflow.record.upserted.${encodeToken(dataset)}`), 0);
  });

  test('a body over the limit answers 413, declared or streamed', async () => {
    const dataset = uniqueName('DS_');
    const big = JSON.stringify(row({ Notes: 'x'.repeat(70 * 1024) }));
    assert.equal((await post(dataset, big)).status, 413);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 80; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
        controller.close();
      },
    });
    const chunked = await fetch(`${gw.url}/webhooks/kissflow/${dataset}`, {
      method: 'POST',
      headers: auth(),
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
  });

  test('every verified body is kept byte for byte in WEBHOOKS_RAW with its non-secret headers', async () => {
    const dataset = uniqueName('DS_');
    const text = JSON.stringify(row({ Nota: 'ñandú 👋' }));
    const response = await post(dataset, text, { ...auth(), 'x-request-id': `req-${dataset}` });
    assert.equal(response.status, 200);
    const message = await gw.bus.jsm.streams.getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: 'raw.kissflow' });
    assert.equal(Buffer.from(message.data).toString('utf8'), text);
    const headers = JSON.parse(message.header.get('Puente-Http-Headers')) as Record<string, string>;
    assert.equal(headers.authorization, undefined, 'the Bearer secret is not kept');
    assert.equal(message.header.get('Puente-Request-Id'), `req-${dataset}`);
    assert.equal(JSON.parse(message.header.get('Puente-Http-Params')).dataset, dataset);
  });

  test('other methods answer 405 and unknown paths 404, as JSON with a request id', async () => {
    const get = await fetch(`${gw.url}/webhooks/kissflow/x`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    const missing = await fetch(`${gw.url}/webhooks/nope`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.ok(((await missing.json()) as { requestId: string }).requestId);
  });
});
