import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { digestEqual } from './auth.js';
import { secretKey } from './signatures.js';

/** Standard Webhooks v1: the replay window the reference libraries use. */
export const STANDARD_WEBHOOKS_TOLERANCE_SECONDS = 5 * 60;

const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** True when the request carries Standard Webhooks headers (then that scheme decides). */
export function hasStandardWebhookHeaders(headers: IncomingHttpHeaders): boolean {
  return headers['webhook-signature'] !== undefined || headers['webhook-id'] !== undefined;
}

/**
 * Verifies `webhook-id`, `webhook-timestamp` (±5 min) and `webhook-signature` (space-separated
 * `v1,<base64>` entries, several during a rotation) over `${id}.${timestamp}.${raw body}` with
 * HMAC-SHA256. Returns the `webhook-id` (the delivery id, the same on every retry) or undefined.
 */
export function verifyStandardWebhook(
  headers: IncomingHttpHeaders,
  body: Buffer,
  secrets: readonly string[],
  now: Date,
): string | undefined {
  const id = one(headers['webhook-id']);
  const timestamp = one(headers['webhook-timestamp']);
  const signature = one(headers['webhook-signature']);
  if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp) || id.includes('.')) return undefined;
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE_SECONDS) return undefined;
  const given = signature
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  if (given.length === 0) return undefined;
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  let matched = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secretKey(secret)).update(content).digest();
    for (const candidate of given) matched = digestEqual(expected, candidate) || matched;
  }
  return matched ? id : undefined;
}
