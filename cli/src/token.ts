import { signToken } from '@puente/realtime';
import { DevSecrets } from '@puente/runtime';
import { flag, required } from './common.js';
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
 * first, during a rotation). `--send` and `--roles` add claims that later features check.
 */
export function token(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): string {
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
  const minted = signToken(
    { sub: flag(args, '--sub') ?? 'puente-cli', channels, ...(send ? { send } : {}), ...(roles ? { roles } : {}) },
    secret ?? DevSecrets.REALTIME_JWT_SECRET,
    ttl,
  );
  out(minted);
  return minted;
}
