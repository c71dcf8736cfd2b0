import { createEvent } from '@puente/contracts';
import { UnauthorizedError, ContractViolationError } from '../../http/errors.js';
import { bearerToken, matchesAny } from '../../http/auth.js';
import { canonicalJson, parseJson, sha256, type Normalized, type WebhookRequest } from '../delivery.js';
import { isPlainObject } from '../readers.js';

/** Kissflow cannot sign bodies: the Integration's HTTP action sends `Authorization: Bearer <secret>`. */
export function verifyKissflow(request: WebhookRequest, secrets: readonly string[]): void {
  const token = bearerToken(request.headers.authorization);
  if (!token || !matchesAny(token, secrets)) throw new UnauthorizedError('missing or invalid Bearer secret');
}

/**
 * The row as the Integration's HTTP action maps it: a bare row (`{"_id": ..., fields}`) or wrapped
 * (`{"row": {...}}`, system fields possibly beside it), normalized to one `kissflow.record.upserted.v1`.
 * Its message id is dataset, row id, modification time and a hash of the row's canonical JSON, so a
 * bare and a wrapped body of the same row are one delivery, and two edits in one second are two.
 */
export function normalizeKissflow(request: WebhookRequest): Normalized {
  const dataset = request.params.dataset ?? '';
  if (dataset.length === 0 || dataset.length > 200)
    throw new ContractViolationError('the dataset in the path must have 1 to 200 characters', [
      { path: 'dataset', message: 'invalid dataset' },
    ]);
  const body = parseJson(request.body);
  if (!isPlainObject(body))
    throw new ContractViolationError('the body must be a JSON object: the row, or {"row": {...}}', [
      { path: '(body)', message: 'expected an object' },
    ]);
  let row: Record<string, unknown> = body;
  if (isPlainObject(body.row)) {
    row = { ...body.row };
    for (const system of ['_id', '_modified_at'])
      if (row[system] === undefined && body[system] !== undefined) row[system] = body[system];
  }
  const id = row._id;
  if (!(
    (typeof id === 'string' && id.trim().length > 0 && id.length <= 200) ||
    (typeof id === 'number' && Number.isFinite(id))
  )) {
    throw new ContractViolationError('the row needs its _id (a non-empty string)', [
      { path: isPlainObject(body.row) ? 'row._id' : '_id', message: 'required: the Kissflow row id' },
    ]);
  }
  const rowId = String(id);
  let modifiedAt: string | null = null;
  if (row._modified_at !== undefined && row._modified_at !== null && row._modified_at !== '') {
    const ms = typeof row._modified_at === 'string' ? Date.parse(row._modified_at) : Number.NaN;
    if (Number.isNaN(ms))
      throw new ContractViolationError('_modified_at must be an ISO-8601 time', [
        { path: '_modified_at', message: 'expected an ISO-8601 time such as 2025-10-15T10:30:00Z' },
      ]);
    modifiedAt = new Date(ms).toISOString();
  }
  const msgId = `kissflow:${sha256(`${dataset}\n${rowId}\n${modifiedAt ?? ''}\n${canonicalJson(row)}`).slice(0, 40)}`;
  const event = createEvent(
    'kissflow.record.upserted.v1',
    { dataset, rowId, fields: row, modifiedAt, origin: 'webhook' },
    { source: 'urn:puente:gateway:kissflow', time: request.receivedAt.toISOString() },
  );
  return { events: [{ event, msgId }], ignored: [] };
}
