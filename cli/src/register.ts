import { DevSecrets, loadConfig } from '@puente/runtime';
import { Config as WhatsAppConfig, inboxHubFrom, MetaAppClient } from '@puente/whatsapp';
import { registerSessionWebhook } from './whatsapp.js';

/** A registration made with a provider, and how to undo it. */
export interface Registration {
  name: string;
  /** Undoes it; resolves with what was done. */
  undo(): Promise<string>;
}

const first = (value: string | undefined, fallback: string) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .find(Boolean) ?? fallback;

/** The Meta app client from the environment, or why there is none. */
export function metaAppFrom(env: NodeJS.ProcessEnv): MetaAppClient | string {
  const missing = MetaAppClient.missing(env);
  if (missing) return missing;
  const config = loadConfig(WhatsAppConfig, env);
  return new MetaAppClient({
    graphUrl: config.WHATSAPP_GRAPH_URL,
    appId: env.META_APP_ID!,
    appSecret: first(env.WHATSAPP_APP_SECRET, ''),
    timeoutMs: config.WHATSAPP_TIMEOUT_MS,
    ...(env.WHATSAPP_WABA_ID ? { wabaId: env.WHATSAPP_WABA_ID } : {}),
    ...(config.WHATSAPP_ACCESS_TOKEN ? { accessToken: config.WHATSAPP_ACCESS_TOKEN } : {}),
  });
}

/** Sessions named by `--session a,b`, else `INBOXHUB_SESSIONS` or `WHATSAPP_SESSIONS`. */
export function sessionsFrom(flagValue: string | undefined, env: NodeJS.ProcessEnv): string[] {
  return (flagValue ?? env.INBOXHUB_SESSIONS ?? env.WHATSAPP_SESSIONS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Points every configured provider at `base` (the gateway's public URL): Meta (the app's
 * `whatsapp_business_account` subscription with callback, verify token and `messages`, which Meta
 * verifies through the tunnel at once, and the app's subscription to the WABA), Inbox Hub (each
 * session's webhook, signed with INBOXHUB_WEBHOOK_SECRET), and prints Kissflow's manual steps.
 * A provider that fails is reported and skipped; the others still register.
 */
export async function registerAll(
  base: string,
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  sessionFlag: string | undefined,
): Promise<Registration[]> {
  const done: Registration[] = [];
  const meta = metaAppFrom(env);
  if (typeof meta === 'string') out(`Meta: skipped (${meta})`);
  else {
    const callback = `${base}/webhooks/whatsapp-cloud`;
    const verifyToken = first(env.WHATSAPP_VERIFY_TOKEN, DevSecrets.WHATSAPP_VERIFY_TOKEN);
    try {
      const previous = await meta.subscription();
      await meta.subscribe(callback, verifyToken);
      let wabaAdded = false;
      if (meta.wabaConfigured && !(await meta.appSubscribedToWaba())) {
        await meta.subscribeAppToWaba();
        wabaAdded = true;
      }
      out(
        `Meta: the app's webhook is ${callback} (messages field; Meta verified it through the tunnel)${wabaAdded ? '; the app is now subscribed to the WABA' : meta.wabaConfigured ? '; the app was already subscribed to the WABA' : ' (set WHATSAPP_WABA_ID and WHATSAPP_ACCESS_TOKEN to check the WABA subscription too)'}`,
      );
      done.push({
        name: 'Meta',
        undo: async () => {
          if (wabaAdded) await meta.unsubscribeAppFromWaba();
          if (previous?.callback_url && previous.callback_url !== callback) {
            try {
              await meta.subscribe(previous.callback_url, verifyToken);
              return `webhook back to ${previous.callback_url}${wabaAdded ? ', app unsubscribed from the WABA' : ''}`;
            } catch (error) {
              await meta.unsubscribe();
              return `removed the webhook; restoring ${previous.callback_url} failed (${(error as Error).message}): set it again in the app dashboard`;
            }
          }
          await meta.unsubscribe();
          return `webhook subscription removed${wabaAdded ? ', app unsubscribed from the WABA' : ''}`;
        },
      });
    } catch (error) {
      const message = (error as Error).message;
      out(
        `Meta: FAILED: ${message}${/2200|verif/i.test(message) ? ` (is the gateway running on the tunnelled port, with WHATSAPP_VERIFY_TOKEN as here?)` : ''}`,
      );
    }
  }

  const inboxHub = inboxHubFrom(loadConfig(WhatsAppConfig, env));
  const sessions = sessionsFrom(sessionFlag, env);
  if (typeof inboxHub === 'string') out(`Inbox Hub: skipped (${inboxHub})`);
  else if (sessions.length === 0) out('Inbox Hub: skipped (name the sessions with --session a,b or INBOXHUB_SESSIONS)');
  else {
    const url = `${base}/webhooks/inboxhub`;
    const secret = first(env.INBOXHUB_WEBHOOK_SECRET, DevSecrets.INBOXHUB_WEBHOOK_SECRET);
    for (const session of sessions) {
      try {
        const result = await registerSessionWebhook(inboxHub, session, { url, secret });
        out(
          `Inbox Hub ${session}: webhook ${url} (${result.change === 'unchanged' ? 'already so' : result.previous ? `was ${result.previous}` : 'set'}, signed with INBOXHUB_WEBHOOK_SECRET)`,
        );
        done.push({
          name: `Inbox Hub ${session}`,
          undo: async () => {
            if (result.previous && result.previous !== url) {
              await inboxHub.setSessionWebhook(result.dbId!, { webhookUrl: result.previous, webhookSecret: secret });
              return `webhook back to ${result.previous} (signed with INBOXHUB_WEBHOOK_SECRET)`;
            }
            // Inbox Hub's users printed no call that removes a session's webhook.
            return result.previous
              ? 'webhook left as it was'
              : `no earlier webhook to go back to: it still points at ${url}; change it in Inbox Hub`;
          },
        });
      } catch (error) {
        out(`Inbox Hub ${session}: FAILED: ${(error as Error).message}`);
      }
    }
  }
  out(
    `Kissflow: no API for this; in each Integration's HTTP action set the URL to ${base}/webhooks/kissflow/<dataset id> with the header Authorization: Bearer <KISSFLOW_WEBHOOK_SECRET> (docs/kissflow.md)`,
  );
  return done;
}
