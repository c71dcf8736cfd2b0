import { SampleProviders, sampleBody, sampleSecrets, signSample, type SampleProvider } from '@puente/gateway';

/** The first configured value of a secret (the current one during a rotation); undefined leaves the provider's dev value. */
function secret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .find(Boolean);
}

export interface SendSampleResult {
  sent: number;
  accepted: number;
  duplicates: number;
}

/**
 * `puente send-sample <provider> [--count N]`: sends correctly signed, realistic deliveries (non-ASCII
 * text and emoji included) to a running gateway, with the secrets from the environment or the dev ones.
 */
export async function sendSample(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<SendSampleResult> {
  const provider = args[0] as SampleProvider | undefined;
  if (!provider || !SampleProviders.includes(provider))
    throw new UsageError(`send-sample needs a provider: ${SampleProviders.join(', ')}`);
  const countFlag = args.indexOf('--count');
  const count = countFlag >= 0 ? Number(args[countFlag + 1]) : 1;
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
    throw new UsageError('--count takes a whole number from 1 to 1000000');
  const base = (env.GATEWAY_URL ?? `http://127.0.0.1:${env.GATEWAY_PORT ?? 8080}`).replace(/\/$/, '');
  const secrets = sampleSecrets((name) => secret(env, name));
  const result: SendSampleResult = { sent: 0, accepted: 0, duplicates: 0 };
  const started = Date.now();
  let lastReport = 0;
  for (let n = 0; n < count; n++) {
    const sample = signSample(provider, sampleBody(provider, n), secrets);
    let response: Response;
    try {
      response = await fetch(`${base}${sample.path}`, { method: 'POST', headers: sample.headers, body: sample.body });
    } catch (error) {
      throw new Error(
        `cannot reach the gateway at ${base} (${(error as Error).cause ? String((error as { cause: unknown }).cause) : (error as Error).message}); is it running (npm start)?`,
      );
    }
    const text = await response.text();
    if (!response.ok)
      throw new Error(`the gateway answered ${response.status} to ${provider} sample ${n + 1}: ${text.slice(0, 300)}`);
    const answer = JSON.parse(text) as { accepted?: { duplicate: boolean }[] };
    result.sent++;
    for (const a of answer.accepted ?? []) {
      if (a.duplicate) result.duplicates++;
      else result.accepted++;
    }
    if (count === 1) out(`${provider}: ${response.status} ${text}`);
    else if (Date.now() - lastReport > 1_000 || n === count - 1) {
      lastReport = Date.now();
      const rate = Math.round((result.sent * 1000) / Math.max(1, Date.now() - started));
      out(
        `${provider}: sent ${result.sent}/${count} (${result.accepted} events accepted, ${result.duplicates} duplicates, ${rate}/s)`,
      );
    }
  }
  return result;
}

export class UsageError extends Error {}
