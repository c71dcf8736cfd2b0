import { randomUUID } from 'node:crypto';
import { rawRequest } from '../delivery.js';
import type { ProviderDescriptor } from '../provider.js';
import { JSON_CONTENT } from '../sampling.js';
import { normalizeKissflow, verifyKissflow } from './kissflow.js';

/** Kissflow: an Integration's HTTP action posts a dataset row to `/webhooks/kissflow/<dataset>` with a Bearer secret. */
export const kissflowProvider = {
  name: 'kissflow',
  routes: [{ method: 'POST', path: '/webhooks/kissflow/:dataset' }],
  secrets: [
    {
      variable: 'KISSFLOW_WEBHOOK_SECRET',
      dev: 'dev-kissflow-webhook-secret',
      test: ['test-kissflow-secret-current', 'test-kissflow-secret-previous'],
    },
  ],
  verify: (request, context) => verifyKissflow(request, context.secret('KISSFLOW_WEBHOOK_SECRET')),
  normalize: (request) => normalizeKissflow(request),
  renormalize: (raw) => normalizeKissflow(rawRequest(raw)),
  sample: {
    body: (n, now) => ({
      _id: `Pk${randomUUID().slice(0, 8)}`,
      Name: `Documento ${n}`,
      Cliente: { _id: 'C001', Name: 'Comercial Andina S.A.C.' },
      Monto: 100 + n,
      Estado: 'Aprobado ✅',
      _modified_at: now.toISOString(),
    }),
    // A Kissflow HTTP action sends a Bearer secret; nothing signs the body.
    sign: (_raw, secret, { params }) => ({
      path: `/webhooks/kissflow/${encodeURIComponent(params.dataset ?? 'DS_Documentos_Cliente')}`,
      headers: { ...JSON_CONTENT, authorization: `Bearer ${secret}` },
    }),
    signsBody: false,
  },
} as const satisfies ProviderDescriptor<undefined, void>;
