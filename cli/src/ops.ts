import { type Bus, listDeadLetters, purgeDeadLetters, redriveDeadLetter } from '@puente/bus';
import { decodeEvent, Headers, StreamNames } from '@puente/contracts';
import { getRawDelivery, listRawDeliveries, providers, redeliver } from '@puente/gateway';
import { connectBus, flag } from './common.js';
import { UsageError } from './sendSample.js';

/** `30m`, `2h`, `7d` ago, or an ISO time. */
export function parseSince(text: string, now = Date.now()): Date {
  const relative = /^(\d+)([mhd])$/.exec(text.trim());
  if (relative)
    return new Date(
      now - Number(relative[1]) * ({ m: 60_000, h: 3_600_000, d: 86_400_000 } as const)[relative[2] as 'm' | 'h' | 'd'],
    );
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`not a time: ${text} (use an ISO time or 30m, 2h, 7d)`);
  return new Date(ms);
}

function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

async function withBus<T>(env: NodeJS.ProcessEnv, work: (bus: Bus) => Promise<T>): Promise<T> {
  const bus = await connectBus(env);
  try {
    return await work(bus);
  } finally {
    await bus.close();
  }
}

/**
 * `puente dlq list [--consumer C] [--since 2h]`, `dlq show <id>`, `dlq retry --id N | --all [--consumer C]`,
 * `dlq purge [--consumer C]`: dead letters (stream `DLQ`), sent back only to the consumer that gave up.
 */
export async function dlq(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const consumer = flag(rest, '--consumer');
  return withBus(env, async (bus) => {
    switch (sub) {
      case 'list': {
        const since = flag(rest, '--since');
        const from = since ? parseSince(since) : undefined;
        const letters = (await listDeadLetters(bus, consumer ? { consumer } : {})).filter(
          (l) => !from || Date.parse(l.failedAt) >= from.getTime(),
        );
        for (const l of letters)
          out(
            `${String(l.id).padStart(6)}  ${l.failedAt}  ${l.consumer}  ${l.originalSubject}#${l.originalSequence}  ${l.deliveries} deliveries  ${l.errorCode}: ${l.error.slice(0, 120)}`,
          );
        out(`${letters.length} dead letter${letters.length === 1 ? '' : 's'}${consumer ? ` of ${consumer}` : ''}`);
        return 0;
      }
      case 'show': {
        const id = positive(rest[0], 'the dead letter id');
        if (!id) throw new UsageError('dlq show <id>');
        const msg = await bus.jsm.streams.getMessage(StreamNames.DLQ, { seq: id }).catch(() => undefined);
        if (!msg || !msg.subject.startsWith('dlq.')) throw new Error(`no dead letter ${id}`);
        const h = msg.header;
        out(
          `dead letter ${id}: consumer ${h.get(Headers.Consumer)}, from ${h.get(Headers.OriginalStream)} ${h.get(Headers.OriginalSubject)} #${h.get(Headers.OriginalSequence)}`,
        );
        out(
          `failed at ${h.get(Headers.FailedAt)} after ${h.get(Headers.Deliveries)} deliveries: ${h.get(Headers.ErrorCode)}: ${h.get(Headers.Error)}`,
        );
        let body: unknown;
        try {
          body = decodeEvent(msg.data);
        } catch {
          body = new TextDecoder().decode(msg.data);
        }
        out(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
        return 0;
      }
      case 'retry': {
        const id = positive(flag(rest, '--id'), '--id');
        if (!id && !rest.includes('--all')) throw new UsageError('dlq retry --id <id> | --all [--consumer C]');
        const ids = id ? [id] : (await listDeadLetters(bus, consumer ? { consumer } : {})).map((l) => l.id);
        let done = 0;
        for (const each of ids) {
          const redriven = await redriveDeadLetter(bus, each);
          out(`dead letter ${each}: sent back to ${redriven.consumer}`);
          done++;
        }
        out(`${done} dead letter${done === 1 ? '' : 's'} retried`);
        return 0;
      }
      case 'purge': {
        const purged = await purgeDeadLetters(bus, consumer);
        out(`${purged} dead letter${purged === 1 ? '' : 's'} removed${consumer ? ` of ${consumer}` : ''}`);
        return 0;
      }
      default:
        throw new UsageError(`unknown dlq command ${sub ?? '(none)'}: list, show, retry or purge`);
    }
  });
}

/**
 * `puente webhooks list [--provider P] [--dataset D] [--since 2h] [--until T]`, `webhooks show <seq>`,
 * `webhooks redeliver (--seq N | --since T [--until T] [--provider P] [--dataset D])`: the verified bodies kept in
 * `WEBHOOKS_RAW`, and re-running normalization over them after a fix (idempotent: same message ids).
 */
export async function webhooks(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const provider = flag(rest, '--provider');
  const names = providers.map((p) => p.name);
  if (provider && !(names as readonly string[]).includes(provider))
    throw new UsageError(`--provider must be one of ${names.join(', ')}`);
  const range = () => {
    const since = flag(rest, '--since');
    const until = flag(rest, '--until');
    const dataset = flag(rest, '--dataset');
    return {
      ...(provider ? { provider } : {}),
      ...(dataset ? { params: { dataset } } : {}),
      ...(since ? { since: parseSince(since) } : {}),
      ...(until ? { until: parseSince(until) } : {}),
    };
  };
  return withBus(env, async (bus) => {
    switch (sub) {
      case 'list': {
        const list = await listRawDeliveries(bus, range());
        for (const raw of list)
          out(
            `${String(raw.seq).padStart(6)}  ${raw.receivedAt}  ${raw.provider.padEnd(14)}  ${String(raw.body.length).padStart(7)} B  ${raw.headers['x-webhook-event'] ?? raw.params.dataset ?? ''}  request ${raw.requestId}`,
          );
        out(`${list.length} deliver${list.length === 1 ? 'y' : 'ies'}`);
        return 0;
      }
      case 'show': {
        const seq = positive(rest[0], 'the delivery sequence');
        if (!seq) throw new UsageError('webhooks show <seq>');
        const raw = await getRawDelivery(bus, seq).catch((error: unknown) => {
          throw new Error(`no raw delivery ${seq}: ${(error as Error).message}`);
        });
        out(
          `delivery ${raw.seq}: ${raw.provider}, received ${raw.receivedAt}, request ${raw.requestId}, params ${JSON.stringify(raw.params)}`,
        );
        for (const [name, value] of Object.entries(raw.headers)) out(`${name}: ${value}`);
        out('');
        out(raw.body.toString('utf8'));
        return 0;
      }
      case 'redeliver': {
        const seq = positive(flag(rest, '--seq'), '--seq');
        if (!seq && !flag(rest, '--since'))
          throw new UsageError(
            'webhooks redeliver --seq <n> | --since <time> [--until <time>] [--provider P] [--dataset D]',
          );
        const list = seq ? [await getRawDelivery(bus, seq)] : await listRawDeliveries(bus, range());
        let events = 0;
        let fresh = 0;
        let failed = 0;
        for (const [i, raw] of list.entries()) {
          try {
            const result = await redeliver(bus, raw);
            events += result.accepted.length;
            fresh += result.accepted.filter((a) => !a.duplicate).length;
          } catch (error) {
            failed++;
            out(`delivery ${raw.seq} (${raw.provider}): ${(error as Error).message}`);
          }
          if ((i + 1) % 500 === 0) out(`${i + 1}/${list.length} deliveries…`);
        }
        out(
          `${list.length} deliveries normalized again: ${events} events (${fresh} new, ${events - fresh} already in EVENTS), ${failed} could not be read`,
        );
        return failed > 0 ? 1 : 0;
      }
      default:
        throw new UsageError(`unknown webhooks command ${sub ?? '(none)'}: list, show or redeliver`);
    }
  });
}
