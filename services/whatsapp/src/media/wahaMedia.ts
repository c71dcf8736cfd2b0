import { wahaChatId } from '../providers/waha.js';
import { WahaMessage } from '../providers/wahaApiTypes.js';
import {
  fetchBytes,
  fillPath,
  isPlainMediaUrl,
  jsonOf,
  MediaTransientError,
  MediaUnavailableError,
  refused,
  sameOrigin,
  transientStatus,
  type DownloadedMedia,
  type Fetched,
  type MediaItem,
  type MediaSource,
} from './source.js';

/**
 * Incoming media of WAHA sessions (docs/providers/waha.md). The webhook's `media.url` is WAHA's own file
 * server (`/api/files/...`, fetched from WAHA_API_URL with `X-Api-Key` whatever host the URL names). Its files expire (WAHA's files
 * lifetime): an expired one is downloaded again by reading the message with `downloadMedia=true`
 * (`WAHA_MESSAGE_PATH`), which answers a fresh `media.url`; a message or file WAHA no longer has is `EXPIRED`.
 */
export class WahaMediaSource implements MediaSource {
  readonly provider = 'waha';

  constructor(private readonly config: { apiUrl: string; apiKey: string; messagePath: string; timeoutMs: number }) {}

  async download(item: MediaItem, limits: { maxBytes: number }): Promise<DownloadedMedia> {
    if (isPlainMediaUrl(item.media.url)) {
      const got = await this.get(item.media.url, limits.maxBytes);
      if (got.bytes) return { bytes: got.bytes, mimeType: got.headers.get('content-type') ?? undefined };
      const transient = transientStatus(got, "WAHA's file server");
      if (transient) throw transient;
      if (![401, 403, 404, 410].includes(got.status)) throw refused(got, "WAHA's file server");
    }
    const fresh = await this.fresh(item);
    const got = await this.get(fresh.url, limits.maxBytes);
    if (got.bytes)
      return {
        bytes: got.bytes,
        mimeType: fresh.mimeType ?? got.headers.get('content-type') ?? undefined,
        fileName: fresh.fileName,
      };
    const transient = transientStatus(got, "WAHA's file server");
    if (transient) throw transient;
    if (got.status === 404 || got.status === 410)
      throw new MediaUnavailableError(
        'EXPIRED',
        `WAHA's file of message ${item.messageId} expired as soon as it was made`,
      );
    throw refused(got, "WAHA's file server");
  }

  /** The message read again with its media downloaded: a fresh file URL. */
  private async fresh(item: MediaItem): Promise<{ url: string; mimeType?: string; fileName?: string }> {
    const chat = wahaChatId(item.chatId);
    const path = fillPath(this.config.messagePath, {
      session: item.session,
      chat,
      // WAHA names a message by its serialized id, `<fromMe>_<chat>_<id>`.
      message: `${item.fromMe}_${chat}_${item.messageId}`,
    });
    const got = await this.get(`${this.config.apiUrl.replace(/\/$/, '')}${path}`, 1024 * 1024);
    const transient = transientStatus(got, 'WAHA');
    if (transient) throw transient;
    // A session that is not WORKING (422) may be again soon: retried like any other passing failure.
    if (got.status === 422) throw new MediaTransientError(`WAHA session ${item.session} is not WORKING (422)`);
    if (got.status === 404) throw new MediaUnavailableError('EXPIRED', `WAHA no longer has message ${item.messageId}`);
    if (!got.bytes) throw refused(got, 'WAHA');
    const message = WahaMessage.safeParse(jsonOf(got));
    const url = message.success ? message.data.media?.url : undefined;
    if (!url)
      throw new MediaUnavailableError(
        'EXPIRED',
        `WAHA could not download the media of message ${item.messageId} again`,
      );
    const media = message.data!.media!;
    return {
      url: new URL(url, this.config.apiUrl).toString(),
      ...(media.mimetype ? { mimeType: media.mimetype } : {}),
      ...(media.filename ? { fileName: media.filename } : {}),
    };
  }

  private get(webhookUrl: string, maxBytes: number): Promise<Fetched> {
    const url = this.onWaha(webhookUrl);
    const headers: Record<string, string> = sameOrigin(url, this.config.apiUrl)
      ? { 'x-api-key': this.config.apiKey }
      : {};
    return fetchBytes(url, { headers, maxBytes, timeoutMs: this.config.timeoutMs });
  }

  /**
   * WAHA's own files (`/api/files/...`) fetched from WAHA_API_URL: WAHA writes their URLs with its
   * WAHA_BASE_URL, which defaults to `http://localhost:3000` (WAHA's config.service.ts), a host nobody
   * else reaches. Other URLs (an S3 bucket of WAHA Plus) are fetched as they are.
   */
  private onWaha(url: string): string {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return url;
    }
    if (!parsed.pathname.startsWith('/api/files/') || sameOrigin(url, this.config.apiUrl)) return url;
    return `${this.config.apiUrl.replace(/\/$/, '')}${parsed.pathname}${parsed.search}`;
  }
}
