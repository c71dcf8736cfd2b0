import { z } from 'zod';
import {
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

/** Graph's answer for a media id (`GET /{media-id}`), in Meta's casing. */
const GraphMedia = z
  .object({
    url: z.string().min(1),
    mime_type: z.string().optional(),
    sha256: z.string().optional(),
    file_size: z.coerce.number().optional(),
    id: z.string().optional(),
  })
  .loose();
const GraphError = z.object({ error: z.object({ code: z.number().optional() }).loose() }).loose();

/**
 * Incoming media of Cloud API sessions (docs/providers/whatsapp-cloud.md): the webhook carries a media
 * id; `GET {graph}/{media id}` with the access token answers a download URL that lives about five
 * minutes, fetched with the same bearer token. An expired URL is asked for again once through the id;
 * an id Meta no longer has is `EXPIRED`. The size Graph declares is checked before downloading.
 */
export class CloudApiMediaSource implements MediaSource {
  readonly provider = 'cloud-api';

  constructor(private readonly config: { graphUrl: string; accessToken: string; timeoutMs: number }) {}

  async download(item: MediaItem, limits: { maxBytes: number }): Promise<DownloadedMedia> {
    const id = item.media.id;
    if (!id) throw new MediaUnavailableError('NO_SOURCE', 'the Cloud API message names no media id');
    const auth = { authorization: `Bearer ${this.config.accessToken}` };
    for (let attempt = 0; ; attempt++) {
      const meta = await this.meta(id, auth);
      if (meta.file_size !== undefined && meta.file_size > limits.maxBytes)
        throw new MediaUnavailableError(
          'TOO_LARGE',
          `the media is ${meta.file_size} bytes, over MEDIA_MAX_BYTES (${limits.maxBytes})`,
        );
      const got = await fetchBytes(meta.url, {
        headers: auth,
        maxBytes: limits.maxBytes,
        timeoutMs: this.config.timeoutMs,
      });
      if (got.bytes) return { bytes: got.bytes, mimeType: meta.mime_type };
      const transient = transientStatus(got, "Meta's media download");
      if (transient) throw transient;
      // The URL outlived its few minutes (Meta answers 404, or 401 for a signature past its time).
      if ([401, 403, 404, 410].includes(got.status)) {
        if (attempt === 0) continue;
        throw new MediaUnavailableError('EXPIRED', `Meta's download URL for media ${id} expired twice in a row`);
      }
      throw refused(got, "Meta's media download");
    }
  }

  private async meta(id: string, auth: Record<string, string>): Promise<z.infer<typeof GraphMedia>> {
    const got = await fetchBytes(`${this.config.graphUrl.replace(/\/$/, '')}/${encodeURIComponent(id)}`, {
      headers: auth,
      maxBytes: 64 * 1024,
      timeoutMs: this.config.timeoutMs,
    });
    const transient = transientStatus(got, 'the Graph API');
    if (transient) throw transient;
    if (!got.bytes) {
      const code = GraphError.safeParse(parseJson(got.error)).data?.error.code;
      // Graph's "object does not exist" (code 100, 400) or 404: Meta no longer keeps the media (about 30 days).
      if (got.status === 404 || (got.status === 400 && code === 100))
        throw new MediaUnavailableError('EXPIRED', `Meta no longer has media ${id}`);
      if (got.status === 401 || code === 190)
        throw new MediaUnavailableError('REFUSED', 'the Graph API refused the access token (WHATSAPP_ACCESS_TOKEN)');
      throw refused(got, 'the Graph API');
    }
    const parsed = GraphMedia.safeParse(jsonOf(got));
    if (!parsed.success) throw new MediaTransientError(`the Graph API answered media ${id} without a download URL`);
    return parsed.data;
  }
}
