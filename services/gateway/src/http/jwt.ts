import { z } from 'zod';
import { signJwt, verifyJwt } from '@puente/runtime';

/** Evolution's JWT carries no claim the gateway reads; only its signature and times count. */
const AnyClaims = z.unknown();

/**
 * Verifies an HS256 JWT against any of the secrets (the runtime's `verifyJwt`, on jose): HS256 only,
 * `whsec_` secrets as Standard Webhooks keys, and `exp`/`nbf` (when present) within 60 s of skew.
 */
export async function verifyHs256Jwt(token: string, secrets: readonly string[], now: Date): Promise<boolean> {
  return (
    await verifyJwt(token, {
      secrets,
      claims: AnyClaims,
      clockSkewSeconds: 60,
      standardWebhooksSecrets: true,
      now: now.getTime(),
    })
  ).ok;
}

/** Signs an HS256 JWT (for `npx puente send-sample` and tests). */
export function signHs256Jwt(payload: Record<string, unknown>, secret: string): string {
  return signJwt(payload, secret, { standardWebhooksSecrets: true });
}
