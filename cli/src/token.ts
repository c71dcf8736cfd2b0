import { randomUUID } from 'node:crypto';
import { signToken } from '@puente/realtime';
import { DevSecrets, TokenRevocations } from '@puente/runtime';
import { connectBus, flag, required } from './common.js';
import { UsageError } from './sendSample.js';

/** `30m`, `12h`, `7d`, or seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) throw new UsageError(`--ttl must be seconds or a number with s, m, h or d (got ${text})`);
  const seconds =
    Number(match[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as const)[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (seconds <= 0) throw new UsageError('--ttl must be positive');
  return seconds;
}

/**
 * `puente token --channels <patterns> [--ttl 12h] [--sub name] [--send <sessions>] [--roles <roles>]`: mints
 * an HS256 access token (`TokenClaims`) for the realtime WebSocket and HTTP API with REALTIME_JWT_SECRET (the
 * first, during a rotation). `--send` names the sessions the holder may send from, mark read in and sync
 * (the gateway's command API checks it). The token goes to `out` (stdout, alone, so scripts can capture
 * it), its id to `info` (stderr): `puente token revoke <id>` takes it.
 */
export function token(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  info: (line: string) => void = () => {},
): { token: string; jti: string } {
  const channels = required(args, '--channels', "comma-separated channel patterns, e.g. 'whatsapp.>,kissflow.*'")
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  for (const pattern of channels) {
    if (pattern.split('.').some((t) => t === '') || /\s/.test(pattern))
      throw new UsageError(`not a channel pattern: ${pattern}`);
  }
  const ttl = parseTtl(flag(args, '--ttl') ?? '12h');
  const secret = (env.REALTIME_JWT_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .find(Boolean);
  if (!secret && env.NODE_ENV === 'production') throw new Error('REALTIME_JWT_SECRET is not set');
  const list = (name: string) =>
    flag(args, name)
      ?.split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  const send = list('--send');
  const roles = list('--roles');
  const jti = randomUUID();
  const minted = signToken(
    {
      sub: flag(args, '--sub') ?? 'puente-cli',
      channels,
      jti,
      ...(send ? { send } : {}),
      ...(roles ? { roles } : {}),
    },
    secret ?? DevSecrets.REALTIME_JWT_SECRET,
    ttl,
  );
  out(minted);
  info(`token id (jti): ${jti}  (revoke with: npx puente token revoke ${jti})`);
  return { token: minted, jti };
}

/** What the CLI mints as `jti` (a UUID): an argument of this form is a token id, anything else a subject. */
const TOKEN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `puente token revoke <jti|sub> [--sub]`: revokes one token by its id, or every token of a subject
 * issued up to now (`--sub` forces the subject reading of an argument shaped like an id). Realtime and
 * the gateway refuse a revoked token within seconds (their revocation cache), on the NATS the services use.
 */
export async function revokeToken(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<void> {
  const target = args.find((a) => !a.startsWith('--'));
  if (!target) throw new UsageError('token revoke needs a token id (jti) or a subject');
  const bySubject = args.includes('--sub') || !TOKEN_ID.test(target);
  const bus = await connectBus(env);
  try {
    const revocations = new TokenRevocations(bus);
    if (bySubject) {
      await revocations.revokeSubject(target);
      out(`revoked every token of subject ${target} issued until now`);
    } else {
      await revocations.revokeToken(target);
      out(`revoked token ${target}`);
    }
  } finally {
    await bus.close();
  }
}
