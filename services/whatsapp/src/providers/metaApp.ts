import { z } from 'zod';
import { ProviderError, requestJson, type JsonResponse } from '@puente/runtime';

/**
 * The webhook registration side of Meta's Graph API: the app's `whatsapp_business_account`
 * subscription (`/{app-id}/subscriptions`, with the app access token `<app id>|<app secret>`; Meta
 * verifies the callback with a GET before it answers) and the WABA's subscribed apps
 * (`/{waba-id}/subscribed_apps`, with a system-user access token).
 */
export interface MetaAppConfig {
  graphUrl: string;
  appId: string;
  appSecret: string;
  /** System-user token for the WABA calls. */
  accessToken?: string;
  wabaId?: string;
  timeoutMs: number;
}

const Subscription = z
  .object({
    object: z.string(),
    callback_url: z.string().optional(),
    active: z.boolean().optional(),
    fields: z.array(z.union([z.string(), z.object({ name: z.string() }).loose()])).optional(),
  })
  .loose();
export type MetaSubscription = z.infer<typeof Subscription>;

const SubscribedApps = z
  .object({
    data: z.array(
      z
        .object({
          whatsapp_business_api_data: z
            .object({ id: z.string().optional(), name: z.string().optional() })
            .loose()
            .optional(),
        })
        .loose(),
    ),
  })
  .loose();

export class MetaAppClient {
  constructor(private readonly config: MetaAppConfig) {}

  /** Says which variables are missing for the app subscription, or undefined. */
  static missing(env: {
    META_APP_ID?: string | undefined;
    WHATSAPP_APP_SECRET?: string | undefined;
  }): string | undefined {
    const names = (['META_APP_ID', 'WHATSAPP_APP_SECRET'] as const).filter((name) => !env[name]);
    return names.length > 0 ? `Meta app not configured: set ${names.join(', ')}` : undefined;
  }

  /** The app's `whatsapp_business_account` subscription, if any. */
  async subscription(): Promise<MetaSubscription | undefined> {
    const response = await this.call(
      'GET',
      `/${enc(this.config.appId)}/subscriptions?access_token=${enc(this.appToken())}`,
    );
    const list = z.object({ data: z.array(Subscription) }).safeParse(response.body);
    if (!list.success)
      throw new ProviderError('unknown', 'BAD_RESPONSE', 'Meta answered the subscriptions list without data');
    return list.data.data.find((s) => s.object === 'whatsapp_business_account');
  }

  /** Points the app's webhook at `callbackUrl` for the `messages` field; Meta verifies it with a GET first. */
  async subscribe(callbackUrl: string, verifyToken: string, fields: readonly string[] = ['messages']): Promise<void> {
    const form = new URLSearchParams({
      object: 'whatsapp_business_account',
      callback_url: callbackUrl,
      verify_token: verifyToken,
      fields: fields.join(','),
      include_values: 'true',
      access_token: this.appToken(),
    });
    await this.call('POST', `/${enc(this.config.appId)}/subscriptions?${form.toString()}`);
  }

  /** Removes the app's `whatsapp_business_account` subscription. */
  async unsubscribe(): Promise<void> {
    await this.call(
      'DELETE',
      `/${enc(this.config.appId)}/subscriptions?object=whatsapp_business_account&access_token=${enc(this.appToken())}`,
    );
  }

  /** Whether this app is subscribed to the WABA (its webhooks reach the app). */
  async appSubscribedToWaba(): Promise<boolean> {
    const response = await this.call('GET', `/${enc(this.waba())}/subscribed_apps`, true);
    const parsed = SubscribedApps.safeParse(response.body);
    if (!parsed.success)
      throw new ProviderError('unknown', 'BAD_RESPONSE', 'Meta answered subscribed_apps without data');
    return parsed.data.data.some((app) => app.whatsapp_business_api_data?.id === this.config.appId);
  }

  async subscribeAppToWaba(): Promise<void> {
    await this.call('POST', `/${enc(this.waba())}/subscribed_apps`, true);
  }

  async unsubscribeAppFromWaba(): Promise<void> {
    await this.call('DELETE', `/${enc(this.waba())}/subscribed_apps`, true);
  }

  get wabaConfigured(): boolean {
    return Boolean(this.config.wabaId && this.config.accessToken);
  }

  private waba(): string {
    if (!this.config.wabaId || !this.config.accessToken)
      throw new ProviderError(
        'rejected',
        'NOT_CONFIGURED',
        'WABA calls need WHATSAPP_WABA_ID and WHATSAPP_ACCESS_TOKEN',
      );
    return this.config.wabaId;
  }

  private appToken(): string {
    return `${this.config.appId}|${this.config.appSecret}`;
  }

  private async call(method: string, path: string, bearer = false): Promise<JsonResponse> {
    const response = await requestJson(
      `${this.config.graphUrl.replace(/\/$/, '')}${path}`,
      { method, ...(bearer ? { headers: { authorization: `Bearer ${this.config.accessToken}` } } : {}) },
      this.config.timeoutMs,
    );
    if (response.status >= 200 && response.status < 300) return response;
    const error = (response.body as { error?: { message?: string; code?: number } } | undefined)?.error;
    const message = `Meta answered ${response.status}${error?.code !== undefined ? ` (#${error.code})` : ''}: ${error?.message ?? 'no error message'}`;
    throw new ProviderError(
      response.status === 401 || error?.code === 190 ? 'auth' : response.status >= 500 ? 'unknown' : 'rejected',
      `GRAPH_${error?.code ?? response.status}`,
      message,
      response.status,
    );
  }
}

const enc = encodeURIComponent;
