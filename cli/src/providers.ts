import { type Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import { providers, type AnyProvider } from '@puente/gateway';
import { Config as KissflowConfig, kissflowFrom } from '@puente/kissflow-sync';
import { loadConfig } from '@puente/runtime';
import { Config as WhatsAppConfig, inboxHubFrom } from '@puente/whatsapp';
import { connectBus, flag } from './common.js';
import { metaAppFrom, sessionsFrom } from './register.js';
import { runningTunnelUrl } from './tunnel.js';

type Verdict = 'ok' | 'FAIL' | 'n/a' | 'unknown';

export interface ProviderCheck {
  provider: string;
  configured: boolean;
  credentials: { verdict: Verdict; detail: string };
  webhook: { verdict: Verdict; detail: string };
  lastDelivery: string;
}

/** When the gateway last stored a delivery from the provider (`WEBHOOKS_RAW`, `raw.<provider>`). */
async function lastDeliveries(env: NodeJS.ProcessEnv, names: readonly string[]): Promise<(provider: string) => string> {
  let bus: Bus | undefined;
  try {
    bus = await connectBus(env);
    const found = new Map<string, string>();
    for (const provider of names) {
      try {
        const message = await bus.jsm.streams.getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: `raw.${provider}` });
        found.set(provider, message.time.toISOString());
      } catch {
        found.set(provider, 'never (or no longer retained)');
      }
    }
    return (provider) => found.get(provider) ?? 'never';
  } catch (error) {
    const reason = `unknown (NATS: ${(error as Error).message.split('\n')[0]})`;
    return () => reason;
  } finally {
    await bus?.close();
  }
}

/**
 * `puente providers check [--url <public gateway url>] [--session a,b] [--dataset <id>]`: for each
 * provider, whether its credentials work, whether its webhook points at this gateway (the public URL
 * from --url, the running tunnel, or GATEWAY_PUBLIC_URL), and when its last delivery arrived. Exit 1
 * when a credential fails or a webhook points elsewhere.
 */
export async function providersCheck(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  list: readonly AnyProvider[] = providers,
): Promise<{ checks: ProviderCheck[]; code: number }> {
  const base = (flag(args, '--url') ?? runningTunnelUrl(env) ?? env.GATEWAY_PUBLIC_URL)?.replace(/\/$/, '');
  const names = list.map((p) => p.name);
  const last = await lastDeliveries(env, names);
  const checks: ProviderCheck[] = [];
  const pointsHere = (actual: string | undefined, path: string): { verdict: Verdict; detail: string } => {
    if (!actual) return { verdict: 'FAIL', detail: 'no webhook registered' };
    if (!base)
      return {
        verdict: 'unknown',
        detail: `${actual} (no public URL to compare: --url, a running tunnel, or GATEWAY_PUBLIC_URL)`,
      };
    return actual === `${base}${path}`
      ? { verdict: 'ok', detail: actual }
      : { verdict: 'FAIL', detail: `points at ${actual}, not ${base}${path}` };
  };

  /** Providers whose vendor API can be asked about credentials and webhooks, in the order they are shown. */
  const apiChecks: Record<string, () => Promise<void>> = {
    'whatsapp-cloud': async () => {
      const meta = metaAppFrom(env);
      if (typeof meta === 'string')
        checks.push({
          provider: 'whatsapp-cloud',
          configured: false,
          credentials: { verdict: 'n/a', detail: meta },
          webhook: { verdict: 'n/a', detail: '' },
          lastDelivery: last('whatsapp-cloud'),
        });
      else {
        const check: ProviderCheck = {
          provider: 'whatsapp-cloud',
          configured: true,
          credentials: { verdict: 'ok', detail: 'app token accepted' },
          webhook: { verdict: 'unknown', detail: '' },
          lastDelivery: last('whatsapp-cloud'),
        };
        try {
          const subscription = await meta.subscription();
          check.webhook = pointsHere(subscription?.callback_url, '/webhooks/whatsapp-cloud');
          const fields = (subscription?.fields ?? []).map((f) => (typeof f === 'string' ? f : f.name));
          if (subscription && !fields.includes('messages'))
            check.webhook = {
              verdict: 'FAIL',
              detail: `${check.webhook.detail}; the messages field is not subscribed`,
            };
          if (meta.wabaConfigured) {
            const subscribed = await meta.appSubscribedToWaba();
            if (!subscribed)
              check.webhook = {
                verdict: 'FAIL',
                detail: `${check.webhook.detail}; the app is not subscribed to the WABA (webhooks will not come)`,
              };
            check.credentials.detail += subscribed
              ? ', WABA token accepted, app subscribed to the WABA'
              : ', WABA token accepted';
          }
        } catch (error) {
          check.credentials = { verdict: 'FAIL', detail: (error as Error).message };
        }
        checks.push(check);
      }
    },
    inboxhub: async () => {
      const inboxHub = inboxHubFrom(loadConfig(WhatsAppConfig, env));
      if (typeof inboxHub === 'string')
        checks.push({
          provider: 'inboxhub',
          configured: false,
          credentials: { verdict: 'n/a', detail: inboxHub },
          webhook: { verdict: 'n/a', detail: '' },
          lastDelivery: last('inboxhub'),
        });
      else {
        const sessions = sessionsFrom(flag(args, '--session'), env);
        const check: ProviderCheck = {
          provider: 'inboxhub',
          configured: true,
          credentials: { verdict: 'ok', detail: 'login and API key accepted' },
          webhook: { verdict: 'unknown', detail: 'no sessions named (--session or INBOXHUB_SESSIONS)' },
          lastDelivery: last('inboxhub'),
        };
        try {
          const details: string[] = [];
          let verdict: Verdict = sessions.length > 0 ? 'ok' : 'unknown';
          for (const session of sessions) {
            const hook = pointsHere((await inboxHub.webhook(session))?.url, '/webhooks/inboxhub');
            if (hook.verdict === 'FAIL') verdict = 'FAIL';
            else if (hook.verdict === 'unknown' && verdict === 'ok') verdict = 'unknown';
            details.push(`${session}: ${hook.detail}`);
          }
          if (sessions.length > 0) check.webhook = { verdict, detail: details.join('; ') };
        } catch (error) {
          check.credentials = { verdict: 'FAIL', detail: (error as Error).message };
        }
        checks.push(check);
      }
    },
    kissflow: async () => {
      const kissflowConfig = loadConfig(KissflowConfig, env);
      const kissflow = kissflowFrom(kissflowConfig);
      const dataset = flag(args, '--dataset') ?? kissflowConfig.KISSFLOW_RECONCILE_DATASETS[0];
      const manual = {
        verdict: 'n/a' as Verdict,
        detail: "Kissflow has no API for integrations: check each Integration's HTTP action by hand",
      };
      if (typeof kissflow === 'string')
        checks.push({
          provider: 'kissflow',
          configured: false,
          credentials: { verdict: 'n/a', detail: kissflow },
          webhook: manual,
          lastDelivery: last('kissflow'),
        });
      else if (!dataset)
        checks.push({
          provider: 'kissflow',
          configured: true,
          credentials: {
            verdict: 'unknown',
            detail: 'name a dataset to read (--dataset or KISSFLOW_RECONCILE_DATASETS)',
          },
          webhook: manual,
          lastDelivery: last('kissflow'),
        });
      else {
        const credentials = await kissflow.list(dataset, 1, 1).then(
          () => ({ verdict: 'ok' as Verdict, detail: `access key reads ${dataset}` }),
          (error: unknown) => ({ verdict: 'FAIL' as Verdict, detail: (error as Error).message }),
        );
        checks.push({
          provider: 'kissflow',
          configured: true,
          credentials,
          webhook: manual,
          lastDelivery: last('kissflow'),
        });
      }
    },
  };
  for (const name of Object.keys(apiChecks).filter((n) => names.includes(n))) await apiChecks[name]!();
  // Every other provider (Evolution, WAHA, a new one) only sends to the gateway: there is nothing to ask.
  for (const provider of names.filter((n) => !(n in apiChecks))) {
    checks.push({
      provider,
      configured: true,
      credentials: { verdict: 'n/a', detail: 'the gateway only receives from it' },
      webhook: { verdict: 'n/a', detail: "set in the gateway's own settings" },
      lastDelivery: last(provider),
    });
  }

  out(`public gateway URL: ${base ?? 'unknown (--url, a running tunnel, or GATEWAY_PUBLIC_URL)'}`);
  for (const c of checks) {
    out(`${c.provider.padEnd(15)} credentials ${c.credentials.verdict.padEnd(7)} ${c.credentials.detail}`);
    out(`${''.padEnd(15)} webhook     ${c.webhook.verdict.padEnd(7)} ${c.webhook.detail}`);
    out(`${''.padEnd(15)} last delivery ${c.lastDelivery}`);
  }
  const failed = checks.filter((c) => c.credentials.verdict === 'FAIL' || c.webhook.verdict === 'FAIL');
  out(
    failed.length === 0
      ? 'providers check: nothing wrong'
      : `providers check: ${failed.map((c) => c.provider).join(', ')} need attention`,
  );
  return { checks, code: failed.length === 0 ? 0 : 1 };
}
