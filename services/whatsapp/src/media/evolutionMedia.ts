import { errorText } from '../providers/gateway.js';
import { EvolutionBase64Media, EvolutionError, type EvolutionGetBase64 } from '../providers/evolutionApiTypes.js';
import {
  isPlainMediaUrl,
  sameOrigin,
  fetchBytes,
  jsonOf,
  parseJson,
  MediaTransientError,
  MediaUnavailableError,
  refused,
  transientStatus,
  type DownloadedMedia,
  type MediaItem,
  type MediaSource,
} from './source.js';

/**
 * Incoming media of Evolution API sessions (docs/providers/evolution.md). The `url` of Evolution's
 * webhooks is WhatsApp's encrypted CDN file (`mmg.whatsapp.net`, `.enc`): it is never downloaded as the
 * media. Evolution decrypts it: `POST /chat/getBase64FromMediaMessage/{instance}` with the message's key
 * and the `apikey` header answers the file in base64. Evolution answers 400 for a message it no longer
 * has or whose media WhatsApp no longer serves: `EXPIRED`. With Evolution's S3 storage on, its webhook
 * names the stored object (`data.message.mediaUrl`, the descriptor's `url`): that plain file is downloaded
 * first (with `apikey` only on EVOLUTION_API_URL's origin), even without Evolution's API configured.
 */
export class EvolutionMediaSource implements MediaSource {
  readonly provider = 'evolution';

  constructor(
    private readonly config: { api?: { url: string; key: string }; timeoutMs: number; unconfigured?: string },
  ) {}

  async download(item: MediaItem, limits: { maxBytes: number }): Promise<DownloadedMedia> {
    const api = this.config.api;
    const stored = item.media.url;
    if (isPlainMediaUrl(stored)) {
      const own = api !== undefined && sameOrigin(stored, api.url);
      const got = await fetchBytes(stored, {
        headers: own ? { apikey: api.key } : {},
        maxBytes: limits.maxBytes,
        timeoutMs: this.config.timeoutMs,
      });
      if (got.bytes) return { bytes: got.bytes, mimeType: got.headers.get('content-type') ?? undefined };
      const transient = transientStatus(got, "Evolution's stored media URL");
      if (transient) throw transient;
    }
    if (!api)
      throw new MediaUnavailableError(
        isPlainMediaUrl(stored) ? 'EXPIRED' : 'NO_SOURCE',
        `Evolution API cannot be asked for the media: ${this.config.unconfigured ?? 'its API is not configured'}`,
      );
    const got = await fetchBytes(
      `${api.url.replace(/\/$/, '')}/chat/getBase64FromMediaMessage/${encodeURIComponent(item.session)}`,
      {
        method: 'POST',
        headers: { apikey: api.key },
        body: {
          message: { key: { id: item.messageId, remoteJid: item.chatId, fromMe: item.fromMe } },
          convertToMp4: false,
        } satisfies EvolutionGetBase64,
        // Base64 is 4/3 of the bytes, plus the answer's other fields.
        maxBytes: Math.ceil((limits.maxBytes * 4) / 3) + 64 * 1024,
        timeoutMs: this.config.timeoutMs,
      },
    );
    const transient = transientStatus(got, 'Evolution API');
    if (transient) throw transient;
    if (!got.bytes) {
      const said = EvolutionError.safeParse(parseJson(got.error));
      const detail = errorText(said.success ? said.data.response.message : undefined, got.status);
      if (got.status === 400)
        throw new MediaUnavailableError('EXPIRED', `Evolution API could not give the media: ${detail}`);
      throw refused({ ...got, error: detail }, 'Evolution API');
    }
    const answer = EvolutionBase64Media.safeParse(jsonOf(got));
    if (!answer.success) throw new MediaTransientError('Evolution API answered the media without base64');
    const bytes = Buffer.from(answer.data.base64, 'base64');
    if (bytes.length > limits.maxBytes)
      throw new MediaUnavailableError(
        'TOO_LARGE',
        `the media is ${bytes.length} bytes, over MEDIA_MAX_BYTES (${limits.maxBytes})`,
      );
    return {
      bytes,
      mimeType: answer.data.mimetype ?? undefined,
      fileName: answer.data.fileName ?? undefined,
    };
  }
}
