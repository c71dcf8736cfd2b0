import { ProviderError, type JsonResponse } from '@puente/runtime';
import { postToGateway, sendableMedia, type GatewayClient, type GatewaySendInput } from './gateway.js';
import { WahaError, WahaSent, type WahaSendFile, type WahaSendSeen, type WahaSendText } from './wahaApiTypes.js';

/** Where WAHA listens and its key (`WAHA_API_KEY` on the WAHA side). */
export interface WahaConfig {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
}

/** The endpoint per media type: a voice note for audio, a file for documents. */
const MEDIA_PATHS = { image: 'sendImage', video: 'sendVideo', audio: 'sendVoice', document: 'sendFile' } as const;

/** WAHA wants a MIME type on every file; when the send names none, the extension's, else the type's usual one. */
const MIME_BY_EXTENSION: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  mp4: 'video/mp4',
  '3gp': 'video/3gpp',
  ogg: 'audio/ogg; codecs=opus',
  opus: 'audio/ogg; codecs=opus',
  mp3: 'audio/mpeg',
  m4a: 'audio/mp4',
  pdf: 'application/pdf',
  txt: 'text/plain',
  csv: 'text/csv',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  zip: 'application/zip',
};
const MIME_BY_TYPE = {
  image: 'image/jpeg',
  video: 'video/mp4',
  audio: 'audio/ogg; codecs=opus',
  document: 'application/octet-stream',
} as const;

/** A JID as WAHA writes chats: users on `c.us`, groups and others as they are. */
export function wahaChatId(jid: string): string {
  return jid.endsWith('@s.whatsapp.net') ? `${jid.slice(0, -'@s.whatsapp.net'.length)}@c.us` : jid;
}

/** The bare message id of a serialized one (`true_<chat>_<id>[_<participant>]`), as WAHA's webhooks are read. */
function bareId(serialized: string): string {
  const parts = serialized.split('_');
  return parts.length >= 3 && (parts[0] === 'true' || parts[0] === 'false') ? parts[2]! : serialized;
}

/**
 * Sending and marking read through WAHA (docs/providers/waha.md): the session is WAHA's session name,
 * every call carries the key in `X-Api-Key`.
 */
export class WahaClient implements GatewayClient {
  constructor(private readonly config: WahaConfig) {}

  /** Text through `sendText`, media by URL through `sendImage`/`sendVideo`/`sendVoice`/`sendFile`; returns the message id. */
  async send(session: string, input: GatewaySendInput): Promise<string> {
    const chatId = wahaChatId(input.to);
    let response: JsonResponse;
    if (input.media) {
      const type = sendableMedia('WAHA', input.media.type);
      const name = input.media.fileName ?? new URL(input.media.url).pathname.split('/').pop() ?? '';
      const extension = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
      response = await this.post(`/api/${MEDIA_PATHS[type]}`, {
        session,
        chatId,
        file: {
          mimetype: (extension && MIME_BY_EXTENSION[extension]) || MIME_BY_TYPE[type],
          url: input.media.url,
          ...(input.media.fileName ? { filename: input.media.fileName } : {}),
        },
        ...(input.text !== undefined && type !== 'audio' ? { caption: input.text } : {}),
      } satisfies WahaSendFile);
    } else
      response = await this.post('/api/sendText', { session, chatId, text: input.text ?? '' } satisfies WahaSendText);
    const sent = WahaSent.safeParse(response.body);
    const id = !sent.success
      ? undefined
      : (sent.data.key?.id ??
        (typeof sent.data.id === 'string' ? bareId(sent.data.id) : sent.data.id?.id) ??
        sent.data._data?.id?.id);
    if (!id)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `WAHA answered ${response.status} without a message id`,
        response.status,
      );
    return id;
  }

  /** `sendSeen` on the chat (what WEBJS marks), with its newest incoming message (what NOWEB marks). */
  async markRead(session: string, chatId: string, inbound: readonly string[]): Promise<void> {
    const chat = wahaChatId(chatId);
    await this.post('/api/sendSeen', {
      session,
      chatId: chat,
      ...(inbound[0] ? { messageId: `false_${chat}_${inbound[0]}` } : {}),
    } satisfies WahaSendSeen);
  }

  private post(path: string, body: unknown): Promise<JsonResponse> {
    return postToGateway(
      'WAHA',
      {
        url: `${this.config.apiUrl.replace(/\/$/, '')}${path}`,
        headers: { 'x-api-key': this.config.apiKey },
        body,
        timeoutMs: this.config.timeoutMs,
      },
      (answer) => {
        const error = WahaError.safeParse(answer);
        return error.success ? error.data.message : undefined;
      },
    );
  }
}

/** The client when both variables are set; otherwise why sending through WAHA is off. */
export function wahaFrom(config: {
  WAHA_API_URL?: string | undefined;
  WAHA_API_KEY?: string | undefined;
  WHATSAPP_TIMEOUT_MS: number;
}): WahaClient | string {
  if (!config.WAHA_API_URL || !config.WAHA_API_KEY)
    return 'WAHA sending not configured: set WAHA_API_URL and WAHA_API_KEY';
  return new WahaClient({
    apiUrl: config.WAHA_API_URL,
    apiKey: config.WAHA_API_KEY,
    timeoutMs: config.WHATSAPP_TIMEOUT_MS,
  });
}
