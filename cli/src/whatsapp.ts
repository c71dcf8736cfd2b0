import { pino } from 'pino';
import { loadConfig } from '@puente/runtime';
import { Config, FullSync, inboxHubFrom, openBuckets, type SyncState } from '@puente/whatsapp';
import { UsageError } from './sendSample.js';
import { connectBus, flag, progressPrinter, required } from './common.js';

/** The events a webhook registered by Puente subscribes to (what the gateway turns into domain events). */
export const WEBHOOK_EVENTS = [
  'message.received',
  'message.sent',
  'message.delivered',
  'message.read',
  'message.failed',
  'session.status',
  'session.connected',
  'session.disconnected',
  'session.qr',
  'contact.updated',
  'chat.archived',
  'chat.unarchived',
] as const;

function describe(state: SyncState, limits: { chats: number }): { fraction: number; label: string } {
  const stages = { contacts: 0, chats: 1, messages: 2, done: 3 } as const;
  const within = state.stage === 'messages' ? state.chatIndex / Math.max(1, state.chatIds.length) : 0;
  const fraction = state.phase === 'completed' ? 1 : (stages[state.stage] + within) / 3;
  const label = `${state.stage === 'done' ? 'done' : state.stage}: ${state.counts.contacts} contacts, ${state.counts.chats}/${limits.chats} chats, ${state.counts.messages} messages`;
  return { fraction, label };
}

/** `puente whatsapp sync --session <id>`: a full sync now (or the resumption of one that stopped), with progress. */
export async function whatsappSync(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  isTty = process.stdout.isTTY === true,
): Promise<SyncState> {
  const session = required(args, '--session', 'the Inbox Hub session id');
  const config = loadConfig(Config, env);
  const client = inboxHubFrom(config);
  if (typeof client === 'string') throw new Error(client);
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
      client,
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

/** `puente whatsapp register-webhook --session <id> --url <public url>`: points the session's Inbox Hub webhook at the gateway. */
export async function whatsappRegisterWebhook(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<{ url: string; events: string[] }> {
  const session = required(args, '--session', 'the Inbox Hub session id');
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
  const events = flag(args, '--events')
    ?.split(',')
    .map((e) => e.trim())
    .filter(Boolean) ?? [...WEBHOOK_EVENTS];
  const registered = await client.registerWebhook(session, { url: url.toString(), secret, events });
  out(
    `whatsapp register-webhook ${session}: ${registered.url} (${registered.events.length} events: ${registered.events.join(', ')})`,
  );
  return registered;
}
