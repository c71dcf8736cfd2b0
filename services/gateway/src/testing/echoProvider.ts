import { createHmac, randomUUID } from 'node:crypto';
import { createEvent } from '@puente/contracts';
import { ContractViolationError, UnauthorizedError } from '../http/errors.js';
import { hmacMatchesAny, strictHex } from '../http/signatures.js';
import { parseJson, rawRequest, sha256, single, type Normalized, type WebhookRequest } from '../webhooks/delivery.js';
import type { ProviderDescriptor } from '../webhooks/provider.js';
import { isPlainObject, nonEmptyString } from '../webhooks/readers.js';

/**
 * A throwaway provider for tests, written as a new provider would be: it lives only in this file and
 * proves that one descriptor is routed, kept, replayable, sampled and listed without any other change.
 * It posts `{id, text}` to `/webhooks/echo/<board>` signed with `X-Echo-Signature: <hex HMAC-SHA256>`,
 * and becomes a `kissflow.record.upserted.v1` of dataset `echo-<board>` (any valid event would do).
 */
function normalizeEcho(request: WebhookRequest): Normalized {
  const body = parseJson(request.body);
  const id = isPlainObject(body) ? nonEmptyString(body.id) : undefined;
  if (!isPlainObject(body) || !id)
    throw new ContractViolationError('an echo needs its id', [{ path: 'id', message: 'required' }]);
  const dataset = `echo-${request.params.board ?? ''}`;
  const event = createEvent(
    'kissflow.record.upserted.v1',
    { dataset, rowId: id, fields: body, modifiedAt: null, origin: 'webhook' },
    { source: 'urn:puente:gateway:echo', time: request.receivedAt.toISOString() },
  );
  return single(event, `echo:${dataset}:${id}:${sha256(request.body).slice(0, 16)}`);
}

export const echoProvider = {
  name: 'echo',
  routes: [{ method: 'POST', path: '/webhooks/echo/:board' }],
  secrets: [
    {
      variable: 'ECHO_WEBHOOK_SECRET',
      dev: 'dev-echo-webhook-secret',
      test: ['test-echo-secret-current', 'test-echo-secret-previous'],
    },
  ],
  verify: (request, context) => {
    const header = request.headers['x-echo-signature'];
    const given = strictHex((Array.isArray(header) ? header[0] : header) ?? '');
    if (!given || !hmacMatchesAny('sha256', context.secret('ECHO_WEBHOOK_SECRET'), request.body, given))
      throw new UnauthorizedError('missing or invalid X-Echo-Signature');
  },
  normalize: (request) => normalizeEcho(request),
  renormalize: (raw) => normalizeEcho(rawRequest(raw)),
  sample: {
    body: (n) => ({ id: `echo-${n}-${randomUUID().slice(0, 8)}`, text: `eco ${n} 🔁` }),
    sign: (raw, secret, { params }) => ({
      path: `/webhooks/echo/${encodeURIComponent(params.board ?? 'general')}`,
      headers: {
        'content-type': 'application/json',
        'x-echo-signature': createHmac('sha256', secret).update(raw).digest('hex'),
      },
    }),
    signsBody: true,
  },
} as const satisfies ProviderDescriptor<undefined, void>;
