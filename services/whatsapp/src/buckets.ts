import type { KV } from 'nats';
import type { Bus } from '@puente/bus';

/** KV buckets the service keeps its own state in. */
export const Buckets = {
  /** Full-sync cursors and ownership, one key per session. */
  sync: 'whatsapp_sync',
  /** Send attempts (at most once), kept as long as `COMMANDS` keeps a command. */
  sendAttempts: 'whatsapp_send_attempts',
} as const;

/** Opens (or creates) the service's buckets. */
export async function openBuckets(bus: Bus): Promise<{ sync: KV; attempts: KV }> {
  const [sync, attempts] = await Promise.all([
    bus.kv(Buckets.sync, { history: 1 }),
    bus.kv(Buckets.sendAttempts, { history: 1, ttl: 48 * 3_600_000 }),
  ]);
  return { sync, attempts };
}
