import { z } from 'zod';
import { ProviderError, requestJson, retryAfterMs, type JsonResponse } from '@puente/runtime';
import type { MessageTemplate } from '@puente/contracts';
import type { OutgoingMedia, OutgoingMediaType } from '../commands/outgoingMedia.js';

/**
 * Sending through Meta's WhatsApp Cloud API: `POST {graph}/{phone-number-id}/messages` with the
 * access token. Text, templates, and media uploaded first (`POST {graph}/{phone-number-id}/media`)
 * then sent by its media id; marking read takes the id of an inbound message.
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
  /** Uploaded, then sent by the id Meta gives it. */
  media?: OutgoingMedia;
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

const Uploaded = z.object({ id: z.string().min(1) }).loose();

/**
 * One page of `GET /{waba-id}/message_templates` (Meta's Graph API, cursor paging): `data` holds the
 * fields asked for with `fields=`; `paging.next` is absent on the last page, and `paging.cursors.after`
 * is the cursor of the next one.
 */
const TemplatesPage = z
  .object({
    data: z.array(
      z
        .object({
          id: z.string().min(1),
          name: z.string().min(1),
          language: z.string().min(1),
          status: z.string().min(1),
          category: z.string().min(1),
          components: z.array(z.record(z.string(), z.unknown())).optional(),
        })
        .loose(),
    ),
    paging: z
      .object({
        cursors: z.object({ before: z.string().optional(), after: z.string().optional() }).loose().optional(),
        next: z.string().optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

/** The template fields Puente reads (`fields=` of the listing). */
const TEMPLATE_FIELDS = 'id,name,language,status,category,components';
/** Templates per page of the listing, and pages read at most (a WABA holds a few hundred templates at most). */
const TEMPLATE_PAGE_SIZE = 100;
const TEMPLATE_MAX_PAGES = 100;

const MB = 1024 * 1024;
/**
 * What the Cloud API takes per media type (Meta's "Supported media types", as AWS's guide reproduces it:
 * docs/providers/whatsapp-cloud.md): MIME types (parameters such as `; codecs=opus` aside) and the
 * largest size. A sticker's limit is the animated one (500 KB; a static one is 100 KB, which only Meta
 * can tell apart).
 */
export const CLOUD_MEDIA_LIMITS: Record<OutgoingMediaType, { mimeTypes: readonly string[]; maxBytes: number }> = {
  image: { mimeTypes: ['image/jpeg', 'image/png'], maxBytes: 5 * MB },
  video: { mimeTypes: ['video/mp4', 'video/3gpp', 'video/3gp'], maxBytes: 16 * MB },
  audio: { mimeTypes: ['audio/aac', 'audio/amr', 'audio/mpeg', 'audio/mp4', 'audio/ogg'], maxBytes: 16 * MB },
  document: {
    mimeTypes: [
      'text/plain',
      'application/pdf',
      'application/msword',
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      'application/vnd.ms-excel',
      'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      'application/vnd.ms-powerpoint',
      'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    ],
    maxBytes: 100 * MB,
  },
  sticker: { mimeTypes: ['image/webp'], maxBytes: 500 * 1024 },
};

/** Refuses media the Cloud API would refuse, before anything is uploaded: the send fails for good with the reason. */
export function checkCloudMedia(media: Pick<OutgoingMedia, 'type' | 'mimeType' | 'data'>): void {
  const limit = CLOUD_MEDIA_LIMITS[media.type];
  const mime = media.mimeType.split(';')[0]!.trim().toLowerCase();
  if (!limit.mimeTypes.includes(mime))
    throw new ProviderError(
      'rejected',
      'UNSUPPORTED_MEDIA',
      `the Cloud API does not send ${mime} as ${media.type}; it takes ${limit.mimeTypes.join(', ')}`,
    );
  if (media.type === 'audio' && mime === 'audio/ogg' && !/codecs\s*=\s*"?opus/i.test(media.mimeType))
    throw new ProviderError('rejected', 'UNSUPPORTED_MEDIA', 'the Cloud API takes audio/ogg with the opus codec only');
  if (media.data.length > limit.maxBytes)
    throw new ProviderError(
      'rejected',
      'TOO_LARGE',
      `the Cloud API sends ${media.type} up to ${limit.maxBytes} bytes; this one has ${media.data.length}`,
    );
}

/** Graph error codes that mean "not now" (throughput, spam rate, pair rate, app rate limits): not sent, retry later. */
const RATE_LIMIT_CODES = new Set([4, 80007, 130429, 131048, 131056, 133016]);

export class CloudApiClient {
  constructor(private readonly config: CloudApiConfig) {}

  /** The body Meta expects for one outgoing message. */
  static body(
    input: Omit<CloudSendInput, 'media'>,
    media?: { type: OutgoingMediaType; id: string; fileName?: string | undefined },
  ): Record<string, unknown> {
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
    if (media) {
      const content: Record<string, unknown> = { id: media.id };
      if (input.text && media.type !== 'audio' && media.type !== 'sticker') content.caption = input.text;
      if (media.fileName && media.type === 'document') content.filename = media.fileName;
      return { ...base, type: media.type, [media.type]: content };
    }
    return { ...base, type: 'text', text: { body: input.text ?? '', preview_url: false } };
  }

  /**
   * Sends once; returns the `wamid`. Media is checked against {@link CLOUD_MEDIA_LIMITS} and uploaded
   * first; a refused or failed upload is `rejected` (nothing was sent), a throttled one `rate_limited`.
   */
  async send(phoneNumberId: string, input: CloudSendInput): Promise<string> {
    const media = input.media
      ? { type: input.media.type, id: await this.upload(phoneNumberId, input.media), fileName: input.media.fileName }
      : undefined;
    const response = await this.post(phoneNumberId, CloudApiClient.body(input, media));
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

  /**
   * `POST /{phone-number-id}/media` (multipart: `messaging_product`, `type`, `file`): the media id a send
   * then names. Nothing is sent yet, so every failure but a throttle or a refused token is `rejected`.
   */
  async upload(phoneNumberId: string, media: OutgoingMedia): Promise<string> {
    checkCloudMedia(media);
    const form = new FormData();
    form.set('messaging_product', 'whatsapp');
    form.set('type', media.mimeType);
    form.set(
      'file',
      new Blob([media.data], { type: media.mimeType }),
      media.fileName ?? `${media.type}-${media.hash.slice(0, 12)}`,
    );
    let response: Response;
    try {
      response = await fetch(this.url(phoneNumberId, 'media'), {
        method: 'POST',
        headers: { authorization: `Bearer ${this.config.accessToken}`, accept: 'application/json' },
        body: form,
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
    } catch (error) {
      throw new ProviderError('rejected', 'UPLOAD_FAILED', `the Cloud API upload failed: ${(error as Error).message}`);
    }
    const text = await response.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    if (response.status >= 200 && response.status < 300) {
      const uploaded = Uploaded.safeParse(body);
      if (uploaded.success) return uploaded.data.id;
      throw new ProviderError(
        'rejected',
        'UPLOAD_FAILED',
        `the Cloud API answered the upload ${response.status} without a media id`,
      );
    }
    const error = graphFailure({ status: response.status, headers: response.headers, body }, 'the upload');
    throw error.kind === 'unknown' ? new ProviderError('rejected', error.code, error.message, error.status) : error;
  }

  /**
   * Every message template of a WhatsApp Business Account, every status (`GET /{waba-id}/message_templates`,
   * `fields=id,name,language,status,category,components`), page after page by `paging.cursors.after`
   * while Meta gives a `paging.next`.
   */
  async listTemplates(wabaId: string): Promise<MessageTemplate[]> {
    const templates: MessageTemplate[] = [];
    let after: string | undefined;
    for (let page = 0; page < TEMPLATE_MAX_PAGES; page++) {
      const query = new URLSearchParams({ fields: TEMPLATE_FIELDS, limit: String(TEMPLATE_PAGE_SIZE) });
      if (after) query.set('after', after);
      const response = await requestJson(
        `${this.config.graphUrl.replace(/\/$/, '')}/${encodeURIComponent(wabaId)}/message_templates?${query.toString()}`,
        { method: 'GET', headers: { authorization: `Bearer ${this.config.accessToken}` } },
        this.config.timeoutMs,
      );
      if (response.status < 200 || response.status >= 300) throw graphFailure(response, 'the template listing');
      const parsed = TemplatesPage.safeParse(response.body);
      if (!parsed.success)
        throw new ProviderError(
          'unknown',
          'BAD_RESPONSE',
          `the Cloud API answered the template listing ${response.status} without a template list`,
          response.status,
        );
      for (const t of parsed.data.data)
        templates.push({
          id: t.id,
          name: t.name,
          language: t.language,
          status: t.status,
          category: t.category,
          components: t.components ?? [],
        });
      after = parsed.data.paging?.cursors?.after;
      if (!parsed.data.paging?.next || !after) return templates;
    }
    throw new ProviderError(
      'unknown',
      'TOO_MANY_PAGES',
      `the template listing did not end after ${TEMPLATE_MAX_PAGES} pages of ${TEMPLATE_PAGE_SIZE}`,
    );
  }

  private url(phoneNumberId: string, edge: 'messages' | 'media'): string {
    return `${this.config.graphUrl.replace(/\/$/, '')}/${encodeURIComponent(phoneNumberId)}/${edge}`;
  }

  private async post(phoneNumberId: string, body: unknown): Promise<JsonResponse> {
    const response = await requestJson(
      this.url(phoneNumberId, 'messages'),
      { method: 'POST', headers: { authorization: `Bearer ${this.config.accessToken}` }, body },
      this.config.timeoutMs,
    );
    if (response.status >= 200 && response.status < 300) return response;
    throw graphFailure(response, 'the message');
  }
}

/** A Graph error answer as a ProviderError: throttles `rate_limited`, a refused token `auth`, 5xx `unknown`, any other `rejected`. */
function graphFailure(response: JsonResponse, what: string): ProviderError {
  const error = GraphError.safeParse(response.body);
  const code = error.success ? error.data.error.code : undefined;
  const message = error.success ? (error.data.error.message ?? 'error') : `HTTP ${response.status}`;
  if (response.status === 429 || (code !== undefined && RATE_LIMIT_CODES.has(code)))
    return new ProviderError(
      'rate_limited',
      String(code ?? 429),
      `Cloud API rate limit: ${message}`,
      response.status,
      retryAfterMs(response.headers.get('retry-after')) ?? 1_000,
    );
  if (response.status === 401 || code === 190)
    return new ProviderError(
      'auth',
      String(code ?? 401),
      `Cloud API refused the access token: ${message}`,
      response.status,
    );
  if (response.status >= 500)
    return new ProviderError(
      'unknown',
      String(code ?? response.status),
      `Cloud API failed (${response.status}): ${message}`,
      response.status,
    );
  return new ProviderError(
    'rejected',
    String(code ?? response.status),
    `Cloud API rejected ${what}: ${message}`,
    response.status,
  );
}
