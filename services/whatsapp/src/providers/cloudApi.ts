import { z } from 'zod';
import { ProviderError, requestJson, retryAfterMs, type JsonResponse } from '@puente/runtime';

/**
 * Sending through Meta's WhatsApp Cloud API: `POST {graph}/{phone-number-id}/messages` with the
 * access token. Text, media by URL and templates; marking read takes the id of an inbound message.
 */
export interface CloudApiConfig {
  graphUrl: string;
  accessToken: string;
  timeoutMs: number;
}

export interface CloudSendInput {
  /** Phone digits, or a BSUID for a username user. */
  to: string;
  text?: string;
  media?: { type: 'image' | 'video' | 'audio' | 'document' | 'sticker'; url: string; fileName?: string };
  template?: { name: string; language: string; components?: unknown[] | undefined };
}

const Sent = z.object({ messages: z.array(z.object({ id: z.string().min(1) }).loose()).min(1) }).loose();
const GraphError = z
  .object({
    error: z
      .object({
        message: z.string().optional(),
        code: z.number().optional(),
        error_subcode: z.number().optional(),
        type: z.string().optional(),
      })
      .loose(),
  })
  .loose();

/** Graph error codes that mean "not now" (throughput, spam rate, pair rate, app rate limits): not sent, retry later. */
const RATE_LIMIT_CODES = new Set([4, 80007, 130429, 131048, 131056, 133016]);

export class CloudApiClient {
  constructor(private readonly config: CloudApiConfig) {}

  /** The body Meta expects for one outgoing message. */
  static body(input: CloudSendInput): Record<string, unknown> {
    const recipient = /^[A-Z]{2}\./.test(input.to)
      ? { recipient: input.to }
      : { to: input.to.replace(/^\+/, '').replace(/@.*$/, '') };
    const base = { messaging_product: 'whatsapp', recipient_type: 'individual', ...recipient };
    if (input.template)
      return {
        ...base,
        type: 'template',
        template: {
          name: input.template.name,
          language: { code: input.template.language },
          ...(input.template.components ? { components: input.template.components } : {}),
        },
      };
    if (input.media) {
      const media: Record<string, unknown> = { link: input.media.url };
      if (input.text && input.media.type !== 'audio' && input.media.type !== 'sticker') media.caption = input.text;
      if (input.media.fileName && input.media.type === 'document') media.filename = input.media.fileName;
      return { ...base, type: input.media.type, [input.media.type]: media };
    }
    return { ...base, type: 'text', text: { body: input.text ?? '', preview_url: false } };
  }

  /** Sends once; returns the `wamid`. */
  async send(phoneNumberId: string, input: CloudSendInput): Promise<string> {
    const response = await this.post(phoneNumberId, CloudApiClient.body(input));
    const parsed = Sent.safeParse(response.body);
    if (!parsed.success)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `the Cloud API answered ${response.status} without a message id`,
        response.status,
      );
    return parsed.data.messages[0]!.id;
  }

  /** Marks an inbound message (and the ones before it) read. */
  async markRead(phoneNumberId: string, messageId: string): Promise<void> {
    await this.post(phoneNumberId, { messaging_product: 'whatsapp', status: 'read', message_id: messageId });
  }

  private async post(phoneNumberId: string, body: unknown): Promise<JsonResponse> {
    const response = await requestJson(
      `${this.config.graphUrl.replace(/\/$/, '')}/${encodeURIComponent(phoneNumberId)}/messages`,
      { method: 'POST', headers: { authorization: `Bearer ${this.config.accessToken}` }, body },
      this.config.timeoutMs,
    );
    if (response.status >= 200 && response.status < 300) return response;
    const error = GraphError.safeParse(response.body);
    const code = error.success ? error.data.error.code : undefined;
    const message = error.success ? (error.data.error.message ?? 'error') : `HTTP ${response.status}`;
    if (response.status === 429 || (code !== undefined && RATE_LIMIT_CODES.has(code)))
      throw new ProviderError(
        'rate_limited',
        String(code ?? 429),
        `Cloud API rate limit: ${message}`,
        response.status,
        retryAfterMs(response.headers.get('retry-after')) ?? 1_000,
      );
    if (response.status === 401 || code === 190)
      throw new ProviderError(
        'auth',
        String(code ?? 401),
        `Cloud API refused the access token: ${message}`,
        response.status,
      );
    if (response.status >= 500)
      throw new ProviderError(
        'unknown',
        String(code ?? response.status),
        `Cloud API failed (${response.status}): ${message}`,
        response.status,
      );
    throw new ProviderError(
      'rejected',
      String(code ?? response.status),
      `Cloud API rejected the message: ${message}`,
      response.status,
    );
  }
}
