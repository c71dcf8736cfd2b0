import { z } from 'zod';

/** A configuration variable was missing or malformed; the message names it (never a secret's value). */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variables: string[],
    message: string,
  ) {
    super(message);
  }
}

/** Names whose values are never shown; `*_WEBHOOK_URL` (Bitrix24's inbound webhook) carries its secret code in the path. */
const SECRET_NAME = /SECRET|TOKEN|PASSWORD|KEY|CREDS|WEBHOOK_URL|DATABASE_URL|MONGO_URL/i;

/** A TCP port. */
export const port = () =>
  z.coerce
    .number({ error: 'must be a port number' })
    .int('must be a port number')
    .min(1, 'must be a port number from 1 to 65535')
    .max(65535, 'must be a port number from 1 to 65535');
/** Comma-separated list; blanks dropped. */
export const list = () =>
  z.string().transform((value) =>
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
/** A duration in milliseconds, or with a unit: `500ms`, `30s`, `10m`, `24h`, `7d`. `0` means none. */
export const duration = () =>
  z.string().transform((value, ctx) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 500ms, 30s, 10m, 24h or 7d' });
      return z.NEVER;
    }
    const factor = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms'];
    return Math.round(Number(match[1]) * factor);
  });
/** A size in bytes, or with a unit: `512KB`, `4MB`, `2GB` (binary units); `-1` means unlimited. */
export const bytes = () =>
  z.string().transform((value, ctx) => {
    if (value.trim() === '-1') return -1;
    const match = /^(\d+)\s*(B|KB|KIB|MB|MIB|GB|GIB|TB|TIB)?$/i.exec(value.trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'must be a size such as 4194304, 512KB, 4MB or 2GB' });
      return z.NEVER;
    }
    const unit = (match[2] ?? 'B').toUpperCase().replace('I', '');
    const factor = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[unit as 'B'];
    return Number(match[1]) * factor;
  });
export const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol.replace(':', ''));
      } catch {
        return false;
      }
    },
    `must be a ${protocols.join(' or ')} URL`,
  );

/**
 * Validates the environment against a schema whose keys are variable names. A bad value throws a
 * `ConfigError` naming every offending variable (and its value, unless the name says it is a secret).
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '(configuration)');
    const shown = name in present && !SECRET_NAME.test(name) ? ` (got ${JSON.stringify(present[name])})` : '';
    return { name, line: `${name}: ${issue.message}${shown}` };
  });
  const names = [...new Set(problems.map((p) => p.name))];
  return fail(names, `invalid configuration: ${problems.map((p) => p.line).join('; ')}`);
}

function fail(names: string[], message: string): never {
  throw new ConfigError(names, message);
}

/**
 * Development secrets: `npm start` prints them; production mode (`NODE_ENV=production`) refuses them and
 * refuses a missing one. They are obviously fake on purpose. The gateway's own come from its provider
 * descriptors; they are copied here because libs/stack prints them for `npm start` and libs never import
 * services (the gateway's tests check that the copy equals its descriptors).
 */
export const DevSecrets = {
  KISSFLOW_WEBHOOK_SECRET: 'dev-kissflow-webhook-secret',
  INBOXHUB_WEBHOOK_SECRET: 'dev-inboxhub-webhook-secret',
  WHATSAPP_APP_SECRET: 'dev-whatsapp-app-secret',
  WHATSAPP_VERIFY_TOKEN: 'dev-whatsapp-verify-token',
  EVOLUTION_WEBHOOK_SECRET: 'dev-evolution-webhook-secret',
  WAHA_WEBHOOK_SECRET: 'dev-waha-webhook-secret',
  REALTIME_JWT_SECRET: 'dev-realtime-jwt-secret-change-me-0000',
  API_TOKENS: 'dev-api-token',
} as const;
export type SecretName = keyof typeof DevSecrets;

/**
 * The secrets a service uses: the environment's, or the development values outside production. In
 * production a missing secret, or one that contains its development value, stops the service naming the
 * variable. `secrets` names them (development values from `DevSecrets`) or maps each to its development
 * value (a service that owns its secrets, as the gateway's providers do).
 */
export function resolveSecrets<K extends string>(
  secrets: readonly (K & SecretName)[] | Readonly<Record<K, string>>,
  env: NodeJS.ProcessEnv,
): Record<K, string[]> {
  const dev: Readonly<Record<K, string>> = isNameList(secrets)
    ? (Object.fromEntries(secrets.map((name) => [name, DevSecrets[name]])) as Record<K, string>)
    : secrets;
  const production = env.NODE_ENV === 'production';
  const out = {} as Record<K, string[]>;
  const bad: string[] = [];
  for (const name of Object.keys(dev) as K[]) {
    const values = (env[name] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (production && values.length === 0) bad.push(`${name}: required in production`);
    else if (production && values.includes(dev[name]))
      bad.push(`${name}: the development value is refused in production`);
    out[name] = values.length > 0 ? values : [dev[name]];
  }
  if (bad.length > 0)
    fail(
      bad.map((line) => line.split(':')[0]!),
      `invalid configuration: ${bad.join('; ')}`,
    );
  return out;
}

function isNameList<K extends string>(secrets: readonly K[] | Readonly<Record<K, string>>): secrets is readonly K[] {
  return Array.isArray(secrets);
}

/** Settings every service shares. */
export const CommonConfig = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NATS_URL: list()
    .pipe(z.array(url(['nats', 'tls', 'ws', 'wss'])).min(1, 'must list at least one NATS URL'))
    .default(['nats://127.0.0.1:4222']),
  NATS_TOKEN: z.string().optional(),
  NATS_CREDS: z.string().optional(),
  /** Copies of each stream and key-value bucket: 3 on a three-node JetStream cluster (deploy/k8s prod). */
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  MONGO_URL: url(['mongodb', 'mongodb+srv']).default('mongodb://127.0.0.1:27017/'),
  /** Driver pool size; kept moderate because FerretDB's updates each need two backend connections. */
  MONGO_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
  SHUTDOWN_TIMEOUT: duration().default(10_000),
  /**
   * On SIGTERM, how long to keep serving while /readyz already answers 503, before stopping: the time a
   * load balancer (a Kubernetes Service's endpoints) needs to stop routing here. Part of SHUTDOWN_TIMEOUT.
   */
  DRAIN_DELAY: duration().default(0),
  EVENTS_MAX_AGE: duration().optional(),
  EVENTS_MAX_BYTES: bytes().optional(),
  CHANGES_MAX_AGE: duration().optional(),
  CHANGES_MAX_BYTES: bytes().optional(),
  WEBHOOKS_RAW_MAX_AGE: duration().optional(),
  WEBHOOKS_RAW_MAX_BYTES: bytes().optional(),
  COMMANDS_MAX_AGE: duration().optional(),
  DUPLICATE_WINDOW: duration().optional(),
});
export type CommonConfig = z.infer<typeof CommonConfig>;

/** Stream limit overrides from configuration, in the shape `Bus.ensureStreams` takes. */
export function streamOverrides(config: CommonConfig) {
  const d = config.DUPLICATE_WINDOW === undefined ? {} : { duplicateWindowMs: config.DUPLICATE_WINDOW };
  const pick = (maxAgeMs?: number, maxBytes?: number) => ({
    ...(maxAgeMs === undefined ? {} : { maxAgeMs }),
    ...(maxBytes === undefined ? {} : { maxBytes }),
    ...d,
  });
  return {
    EVENTS: pick(config.EVENTS_MAX_AGE, config.EVENTS_MAX_BYTES),
    CHANGES: pick(config.CHANGES_MAX_AGE, config.CHANGES_MAX_BYTES),
    WEBHOOKS_RAW: pick(config.WEBHOOKS_RAW_MAX_AGE, config.WEBHOOKS_RAW_MAX_BYTES),
    COMMANDS: pick(config.COMMANDS_MAX_AGE),
    DLQ: { ...d },
  };
}
