import { pino } from 'pino';
import { loadConfig } from '@puente/runtime';
import {
  Config,
  FullSync,
  INBOXHUB_EVENTS,
  inboxHubFrom,
  evolutionFrom,
  inboxHubSource,
  wahaFrom,
  openBuckets,
  type InboxHubClient,
  type SyncSource,
  type SyncState,
  type WhatsAppConfig,
} from '@puente/whatsapp';
import { UsageError } from './sendSample.js';
import { connectBus, flag, progressPrinter, required } from './common.js';

function describe(state: SyncState, limits: { chats: number }): { fraction: number; label: string } {
  const stages = { contacts: 0, chats: 1, messages: 2, done: 3 } as const;
  const within = state.stage === 'messages' ? state.chatIndex / Math.max(1, state.chatIds.length) : 0;
  const fraction = state.phase === 'completed' ? 1 : (stages[state.stage] + within) / 3;
  const label = `${state.stage === 'done' ? 'done' : state.stage}: ${state.counts.contacts} contacts, ${state.counts.chats}/${limits.chats} chats, ${state.counts.messages} messages`;
  return { fraction, label };
}

/** The source a `--provider` names (Inbox Hub unless told), or why it cannot be read. */
function sourceFor(provider: string, config: WhatsAppConfig): SyncSource {
  switch (provider) {
    case 'inboxhub': {
      const client = inboxHubFrom(config);
      if (typeof client === 'string') throw new Error(client);
      return inboxHubSource(client);
    }
    case 'evolution': {
      const client = evolutionFrom(config);
      if (typeof client === 'string') throw new Error(client);
      return client;
    }
    case 'waha': {
      const client = wahaFrom(config);
      if (typeof client === 'string') throw new Error(client);
      return client;
    }
    default:
      throw new UsageError(`--provider must be inboxhub, evolution or waha, not ${provider}`);
  }
}

/**
 * `puente whatsapp sync --session <id> [--provider inboxhub|evolution|waha]`: a full sync now (or the resumption of
 * one that stopped), with progress.
 */
export async function whatsappSync(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  isTty = process.stdout.isTTY === true,
): Promise<SyncState> {
  const session = required(
    args,
    '--session',
    'the session id (Inbox Hub), instance (Evolution API) or session name (WAHA)',
  );
  const config = loadConfig(Config, env);
  const source = sourceFor(flag(args, '--provider') ?? 'inboxhub', config);
  const bus = await connectBus(env);
  try {
    await bus.ensureStreams();
    const { sync: kv } = await openBuckets(bus);
    const limits = {
      chats: config.INBOXHUB_SYNC_CHATS,
      messagesPerChat: config.INBOXHUB_SYNC_MESSAGES,
      pageSize: config.INBOXHUB_SYNC_PAGE_SIZE,
    };
    const sync = new FullSync({
      bus,
      kv,
      source,
      logger: pino({ level: 'silent' }),
      limits,
      staleAfterMs: config.INBOXHUB_SYNC_STALE_MS,
    });
    const progress = progressPrinter(out, isTty);
    const state = await sync.run(session, (s) => {
      const { fraction, label } = describe(s, limits);
      progress.show(fraction, label, s.phase !== 'running');
    });
    progress.done();
    out(
      `whatsapp sync ${session}: ${state.phase} (sync ${state.syncId}): ${state.counts.contacts} contacts, ${state.counts.chats} chats, ${state.counts.messages} messages imported`,
    );
    return state;
  } finally {
    await bus.close();
  }
}

/** What registering a webhook did. */
export interface WebhookChange {
  /** `set`: it pointed elsewhere or nowhere known; `unchanged`: it already pointed here; `created`/`exists` for an account webhook. */
  change: 'set' | 'unchanged' | 'created' | 'exists';
  url: string;
  /** The session's DB id (per-session webhooks). */
  dbId?: string;
  /** Where it pointed before, when Inbox Hub told. */
  previous?: string | undefined;
}

/**
 * Points one session's webhook at `url` (`PUT /api/sessions/{DB id}/webhook`, `{webhookUrl,
 * webhookSecret}`). The DB id is `dbId` or looked up from the string id in the session list, which
 * also tells where the webhook pointed: the same URL is `unchanged` (the `PUT` is still made, with the
 * same URL, so that the secret is the current one: Inbox Hub never shows a secret back).
 */
export async function registerSessionWebhook(
  client: InboxHubClient,
  session: string,
  webhook: { url: string; secret: string },
  dbId?: string,
): Promise<WebhookChange> {
  const found = dbId ? undefined : await client.session(session);
  const id = dbId ?? found?.dbId;
  if (!id)
    throw new Error(
      `Inbox Hub lists no session ${session} (give its DB id with --session-db-id, or check INBOXHUB_SESSIONS_PATH)`,
    );
  await client.setSessionWebhook(id, { webhookUrl: webhook.url, webhookSecret: webhook.secret });
  const previous = found?.webhookUrl;
  return { change: previous === webhook.url ? 'unchanged' : 'set', url: webhook.url, dbId: id, previous };
}

/**
 * Creates the account-wide webhook (`POST /api/webhooks`, every event) unless the account's webhook
 * list shows one with this URL already (`exists`: nothing is sent). Where Inbox Hub has no list, it
 * cannot tell and creates one.
 */
export async function registerAccountWebhook(
  client: InboxHubClient,
  webhook: { name: string; url: string; secret: string; events: readonly string[] },
): Promise<WebhookChange & { missingEvents?: string[] }> {
  const existing = await client.accountWebhooks();
  const same = existing?.find((h) => h.url === webhook.url);
  if (same) {
    const missingEvents = webhook.events.filter((e) => !(same.events ?? []).includes(e));
    return { change: 'exists', url: webhook.url, ...(missingEvents.length > 0 ? { missingEvents } : {}) };
  }
  await client.createAccountWebhook({ ...webhook, method: 'POST' });
  return { change: 'created', url: webhook.url, ...(existing === undefined ? { previous: 'unknown' } : {}) };
}

/**
 * `puente whatsapp register-webhook --session <id> [--session-db-id <n>] --url <public url>`: points
 * the session's Inbox Hub webhook at the gateway; `--account` instead registers an account-wide one
 * (`--name`, `--events`, all eleven by default). Prints what changed.
 */
export async function whatsappRegisterWebhook(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<WebhookChange> {
  const account = args.includes('--account');
  const session = account ? undefined : required(args, '--session', 'the Inbox Hub session id');
  const base = required(args, '--url', "the gateway's public URL, e.g. https://hub.example.com");
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`--url must be an absolute URL, got ${base}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError('--url must be http or https');
  if (!url.pathname.endsWith('/webhooks/inboxhub'))
    url.pathname = `${url.pathname.replace(/\/$/, '')}/webhooks/inboxhub`;
  const secret = (env.INBOXHUB_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .find(Boolean);
  if (!secret)
    throw new Error(
      'INBOXHUB_WEBHOOK_SECRET is not set: the webhook must be signed with the secret the gateway verifies',
    );
  const client = inboxHubFrom(loadConfig(Config, env));
  if (typeof client === 'string') throw new Error(client);
  if (session === undefined) {
    const events = flag(args, '--events')
      ?.split(',')
      .map((e) => e.trim())
      .filter(Boolean) ?? [...INBOXHUB_EVENTS];
    const name = flag(args, '--name') ?? 'Puente';
    const result = await registerAccountWebhook(client, { name, url: url.toString(), secret, events });
    out(
      result.change === 'exists'
        ? `whatsapp register-webhook --account: unchanged, a webhook to ${result.url} exists${result.missingEvents ? ` (without ${result.missingEvents.join(', ')}: Inbox Hub's users printed no call to change it; edit it in Inbox Hub)` : ''}`
        : `whatsapp register-webhook --account: created "${name}" -> ${result.url} (${events.length} events: ${events.join(', ')})${result.previous === 'unknown' ? '; Inbox Hub lists no webhooks, so a second run cannot tell it exists' : ''}`,
    );
    return result;
  }
  if (flag(args, '--events')) throw new UsageError("--events is for --account: a session's webhook gets every event");
  const result = await registerSessionWebhook(
    client,
    session,
    { url: url.toString(), secret },
    flag(args, '--session-db-id'),
  );
  out(
    result.change === 'unchanged'
      ? `whatsapp register-webhook ${session} (DB id ${result.dbId}): unchanged, already ${result.url} (secret set again)`
      : `whatsapp register-webhook ${session} (DB id ${result.dbId}): ${result.previous ? `${result.previous} -> ` : ''}${result.url}, signed with INBOXHUB_WEBHOOK_SECRET`,
  );
  return result;
}
