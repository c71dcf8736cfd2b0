import { randomBytes } from 'node:crypto';
import { loadConfig, url } from '@puente/runtime';
import {
  BitrixSettings,
  BitrixTokenStore,
  bitrixClientFrom,
  bitrixMissing,
  bitrixTokenStoreFrom,
  CatalogSettings,
  CatalogSync,
  Config as ServiceConfig,
  describeChange,
  loadCatalogMapping,
  loadCompanyMapping,
  publishCompanyResync,
  type CatalogCounts,
  type CatalogPriceType,
  type CrmStatus,
} from '@puente/bitrix-sync';
import { connectBus } from './common.js';
import { UsageError } from './sendSample.js';

const SUBCOMMANDS =
  'auth-url, auth --code <code>, price-types, directory-items <ENTITY_ID> or sync services [--dry-run]';

/**
 * `puente bitrix <sub>`: first-time OAuth authorization (`auth-url`, `auth --code`) and the ids an
 * operator needs for the mapping file (`price-types`, `directory-items <ENTITY_ID>`). Returns the exit code.
 */
export async function bitrix(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'auth-url':
      return authUrl(env, out);
    case 'auth':
      return auth(rest, env, out);
    case 'price-types':
      return priceTypes(env, out);
    case 'directory-items':
      return directoryItems(rest, env, out);
    case 'sync':
      return bitrixSync(rest, env, out);
    default:
      throw new UsageError(`unknown bitrix command ${sub ?? '(none)'}: ${SUBCOMMANDS}`);
  }
}

function settings(env: NodeJS.ProcessEnv): BitrixSettings {
  return loadConfig(BitrixSettings, env);
}

/** Prints the URL where a portal administrator authorizes the app. */
function authUrl(env: NodeJS.ProcessEnv, out: (line: string) => void): number {
  const config = settings(env);
  if (!config.BITRIX_PORTAL_URL || !config.BITRIX_CLIENT_ID)
    throw new Error(
      'set BITRIX_PORTAL_URL and BITRIX_CLIENT_ID (the local or marketplace app) to authorize with OAuth',
    );
  const state = randomBytes(12).toString('hex');
  out(BitrixTokenStore.authorizeUrl(config.BITRIX_PORTAL_URL, config.BITRIX_CLIENT_ID, state));
  out(`open it as a portal administrator; Bitrix24 redirects to the app's redirect URI with ?code=...&state=${state}`);
  out('the code is valid for 30 seconds: run `npx puente bitrix auth --code <code>` right away');
  return 0;
}

/** Exchanges the code and stores the tokens in the bus's key-value store; prints the portal, never the tokens. */
async function auth(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const i = args.indexOf('--code');
  const code = i >= 0 ? args[i + 1] : undefined;
  if (!code || code.startsWith('--'))
    throw new UsageError('--code is required (the code from the redirect after bitrix auth-url)');
  const config = settings(env);
  const bus = await connectBus(env);
  try {
    const store = await bitrixTokenStoreFrom({ config, bus });
    const tokens = await store.exchangeCode(code);
    const portal = tokens.clientEndpoint
      ? new URL(tokens.clientEndpoint).host
      : new URL(config.BITRIX_PORTAL_URL!).host;
    out(
      `authorized portal ${portal} (member id ${tokens.memberId ?? 'unknown'}, scope ${tokens.scope ?? 'unknown'}); tokens stored in the NATS key-value bucket ${config.BITRIX_TOKEN_BUCKET}`,
    );
    return 0;
  } finally {
    await bus.close();
  }
}

async function withClient<T>(
  env: NodeJS.ProcessEnv,
  use: (client: Awaited<ReturnType<typeof bitrixClientFrom>>) => Promise<T>,
): Promise<T> {
  const config = settings(env);
  const missing = bitrixMissing(config);
  if (missing) throw new Error(missing);
  const bus = await connectBus(env);
  try {
    return await use(await bitrixClientFrom({ config, bus }));
  } finally {
    await bus.close();
  }
}

/** `id  name  base  xmlId` for every catalog price type. */
async function priceTypes(env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const rows: string[][] = [];
  await withClient(env, async (client) => {
    for await (const page of client.list<CatalogPriceType>(
      'catalog.priceType.list',
      { order: { sort: 'ASC' } },
      (r) => (r as { priceTypes?: CatalogPriceType[] }).priceTypes ?? [],
    )) {
      for (const t of page) rows.push([String(t.id), t.name, t.base, t.xmlId ?? '']);
    }
  });
  table(['id', 'name', 'base', 'xmlId'], rows, out);
  return 0;
}

/** `STATUS_ID  NAME` of a CRM directory (COMPANY_TYPE, INDUSTRY, EMPLOYEES, ...). */
async function directoryItems(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const entity = args[0];
  if (!entity || entity.startsWith('--'))
    throw new UsageError('bitrix directory-items needs the directory, e.g. COMPANY_TYPE, INDUSTRY or EMPLOYEES');
  const rows: string[][] = [];
  await withClient(env, async (client) => {
    for await (const page of client.list<CrmStatus>(
      'crm.status.list',
      { filter: { ENTITY_ID: entity }, order: { SORT: 'ASC' } },
      (r) => r as CrmStatus[],
    )) {
      for (const s of page) rows.push([s.STATUS_ID, s.NAME]);
    }
  });
  if (rows.length === 0)
    throw new Error(
      `Bitrix24 has no items in directory ${entity} (COMPANY_TYPE, INDUSTRY and EMPLOYEES are the usual ones)`,
    );
  table(['STATUS_ID', 'NAME'], rows, out);
  return 0;
}

function table(head: string[], rows: string[][], out: (line: string) => void): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  out(line(head));
  for (const row of rows) out(line(row));
}

/** What `bitrix sync services` reads: the Bitrix24 settings, the catalog settings and the ERP database. */
const SyncSettings = BitrixSettings.extend({
  ...CatalogSettings.shape,
  GLYMS_DATABASE_URL: url(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/glyms'),
});

/**
 * `puente bitrix sync <services|companies|all> [--dry-run]`: runs a sync now. `services` pushes the ERP's
 * service catalog to Bitrix24 (with `--dry-run`, prints the changes and writes nothing). Returns the exit
 * code: 1 when a product could not be written (each failure is printed on its own line).
 */
export async function bitrixSync(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const [target, ...options] = args;
  const unknown = options.find((option) => option !== '--dry-run');
  if (unknown !== undefined) throw new UsageError(`unknown option ${unknown} for bitrix sync: only --dry-run`);
  switch (target) {
    case 'services':
      return syncServices(options.includes('--dry-run'), env, out);
    case 'companies':
      if (options.includes('--dry-run'))
        throw new UsageError(
          'bitrix sync companies has no --dry-run: it hands every customer to the running bitrix-sync',
        );
      return syncCompanies(env, out);
    case 'all': {
      const services = await syncServices(options.includes('--dry-run'), env, out);
      if (options.includes('--dry-run')) return services;
      return Math.max(services, await syncCompanies(env, out));
    }
    default:
      throw new UsageError(`bitrix sync needs what to sync: services, companies or all (got ${target ?? 'nothing'})`);
  }
}

async function syncServices(dryRun: boolean, env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const config = loadConfig(SyncSettings, env);
  const missing = bitrixMissing(config);
  if (missing) throw new Error(missing);
  const mapping = loadCatalogMapping(config.BITRIX_CATALOG_MAPPING);
  const bus = await connectBus(env);
  try {
    // The outcome events go to EVENTS, as the service's would.
    if (!dryRun) await bus.ensureStreams();
    const client = await bitrixClientFrom({ config, bus });
    const sync = new CatalogSync({
      client,
      bus,
      mapping,
      databaseUrl: config.GLYMS_DATABASE_URL,
      query: config.BITRIX_CATALOG_QUERY,
      // Progress goes to stderr, so stdout stays the list of changes.
      onProgress: (message) => process.stderr.write(`${message}\n`),
    });
    const result = await sync.run({ dryRun });
    for (const section of result.plan.sections) out(`+ section ${JSON.stringify(section.name)} (${section.xmlId})`);
    for (const change of result.plan.changes) out(describeChange(change));
    for (const error of result.errors)
      out(
        `! ${error.xmlId} ${error.step === 'row' ? 'skipped' : `${error.method} failed`}: ${error.code || 'error'}: ${error.message}`,
      );
    if (result.eventsError)
      out(`! outcome events not published (bitrix_links will not show this run): ${result.eventsError}`);
    out(
      summary(result.counts, dryRun, result.plan.context.iblockId, result.plan.context.priceTypeId, mapping.currency),
    );
    return !dryRun && (result.counts.failed > 0 || result.eventsError) ? 1 : 0;
  } finally {
    await bus.close();
  }
}

function summary(c: CatalogCounts, dryRun: boolean, iblockId: number, priceTypeId: number, currency: string): string {
  const where = `catalog ${iblockId}, price type ${priceTypeId}, ${currency}`;
  if (dryRun)
    return `dry run (${where}): ${c.created} to create, ${c.updated} to update, ${c.priced} prices to write, ${c.deactivated} to deactivate, ${c.unchanged} unchanged, ${c.failed} invalid; nothing was written`;
  return `services synced (${where}): ${c.created} created, ${c.updated} updated, ${c.priced} priced, ${c.deactivated} deactivated, ${c.unchanged} unchanged, ${c.failed} failed`;
}

/**
 * `bitrix sync companies`: publishes every current customer as a resync change; the active bitrix-sync
 * writes each company again (its consumer, its rate limit, its outcomes in `bitrix_links`).
 */
async function syncCompanies(env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const config = loadConfig(ServiceConfig, env);
  const mapping = loadCompanyMapping(config.BITRIX_COMPANY_MAPPING);
  const bus = await connectBus(env);
  try {
    await bus.ensureStreams();
    let last = 0;
    const rows = await publishCompanyResync({
      bus,
      databaseUrl: config.GLYMS_DATABASE_URL,
      mapping,
      mode: config.GLYMS_CDC_MODE,
      onProgress: (count) => {
        if (Date.now() - last < 1_000) return;
        last = Date.now();
        process.stderr.write(`published ${count} customers\n`);
      },
    });
    out(
      `companies: ${rows} customers of ${mapping.table} handed to bitrix-sync, which writes each company again (see bitrix_links or npx puente status)`,
    );
    return 0;
  } finally {
    await bus.close();
  }
}
