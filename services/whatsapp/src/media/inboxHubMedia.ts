import { ProviderError } from '@puente/runtime';
import type { InboxHubClient } from '../providers/inboxhub.js';
import {
  fetchBytes,
  fillPath,
  isPlainMediaUrl,
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
 * Incoming media of Inbox Hub sessions (docs/providers/inboxhub.md). The webhook's `media.url` is
 * downloaded first; Inbox Hub's credentials (the client's JWT and `X-API-Key`) go with it only when it
 * is on INBOXHUB_API_URL's origin, never to another host. An expired URL (403, 404, 410), or none, is
 * downloaded through `INBOXHUB_MEDIA_PATH` instead (unprinted: Puente's choice); 404 there is `EXPIRED`.
 * Without Inbox Hub's API configured, a webhook's URL on another host is still downloaded (bare); what
 * would need the API (a URL on no host, an expired one) is then `NO_SOURCE` or `EXPIRED`, saying why.
 */
export class InboxHubMediaSource implements MediaSource {
  readonly provider = 'inboxhub';

  constructor(
    private readonly client: InboxHubClient | undefined,
    private readonly options: { mediaPath: string; timeoutMs: number; unconfigured?: string },
  ) {}

  async download(item: MediaItem, limits: { maxBytes: number }): Promise<DownloadedMedia> {
    const url = item.media.url;
    // A message read back in Baileys' shape carries WhatsApp's encrypted CDN URL: straight to the path.
    if (isPlainMediaUrl(url)) {
      const got = await this.get(url, limits.maxBytes);
      if (got.bytes) return { bytes: got.bytes, mimeType: got.headers.get('content-type') ?? undefined };
      const transient = transientStatus(got, 'Inbox Hub media URL');
      if (transient) throw transient;
      if (![401, 403, 404, 410].includes(got.status)) throw refused(got, 'the Inbox Hub media URL');
    }
    const client = this.client;
    if (!client)
      throw new MediaUnavailableError(
        url ? 'EXPIRED' : 'NO_SOURCE',
        `${url ? 'the media URL is gone' : 'the message names no media URL'} and Inbox Hub cannot be asked again: ${this.options.unconfigured ?? 'its API is not configured'}`,
      );
    const path = fillPath(this.options.mediaPath, {
      session: item.session,
      chat: item.chatId,
      message: item.messageId,
    });
    const got = await this.get(`${client.apiUrl.replace(/\/$/, '')}${path}`, limits.maxBytes);
    if (got.bytes) return { bytes: got.bytes, mimeType: got.headers.get('content-type') ?? undefined };
    const transient = transientStatus(got, 'Inbox Hub');
    if (transient) throw transient;
    if (got.status === 404 || got.status === 410)
      throw new MediaUnavailableError('EXPIRED', `Inbox Hub no longer has the media of message ${item.messageId}`);
    throw refused(got, 'Inbox Hub');
  }

  /** A GET with Inbox Hub's credentials when on its origin (a refused JWT is renewed once), bare otherwise. */
  private async get(url: string, maxBytes: number): Promise<Fetched> {
    const own = this.client !== undefined && sameOrigin(url, this.client.apiUrl);
    for (let attempt = 0; ; attempt++) {
      const headers = own ? await this.credentials(attempt > 0) : {};
      const got = await fetchBytes(url, { headers, maxBytes, timeoutMs: this.options.timeoutMs });
      if (own && got.status === 401 && attempt === 0) continue;
      return got;
    }
  }

  private async credentials(renew: boolean): Promise<Record<string, string>> {
    try {
      return await this.client!.credentials(renew);
    } catch (error) {
      if (error instanceof ProviderError && error.kind === 'auth')
        throw new MediaUnavailableError('REFUSED', error.message);
      throw new MediaTransientError(`Inbox Hub login failed: ${(error as Error).message}`);
    }
  }
}
