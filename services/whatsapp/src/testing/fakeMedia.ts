import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

/** One file a fake provider serves. */
export interface FakeFile {
  bytes: Buffer;
  mimeType: string;
  fileName?: string | undefined;
  /** When its URL stops working (ms since the epoch). */
  expiresAt: number;
}

/**
 * The files a fake provider serves for media downloads, by an unguessable token (as the providers' URLs
 * are): each expires after its time to live, can be expired by a test at once, and the next downloads
 * can be made to fail with a status (a 503 that passes).
 */
export class FakeMediaFiles {
  /** Successful downloads, by token: a test checks a file was fetched once. */
  readonly downloads: string[] = [];
  private readonly files = new Map<string, FakeFile>();
  private readonly failures: number[] = [];
  private stale = 0;

  constructor(private readonly ttlMs: number) {}

  /** Serves `bytes` under a new token until `ttlMs` from now. */
  add(file: Omit<FakeFile, 'expiresAt'>, ttlMs = this.ttlMs): string {
    const token = randomBytes(12).toString('hex');
    const expired = this.stale > 0;
    if (expired) this.stale--;
    this.files.set(token, { ...file, expiresAt: expired ? 0 : Date.now() + ttlMs });
    return token;
  }

  /** The next `count` URLs handed out have expired before anyone downloads them (a download that came too late). */
  expireNextUrls(count: number): void {
    this.stale += count;
  }

  /** The URL of `token` stops working now. */
  expire(token: string): void {
    const file = this.files.get(token);
    if (file) file.expiresAt = 0;
  }

  /** The next `count` downloads answer `status` (default 503). */
  failNext(count: number, status = 503): void {
    for (let i = 0; i < count; i++) this.failures.push(status);
  }

  /** The file of a token, `expired` when its time is up, undefined when it never existed. */
  lookup(token: string): FakeFile | 'expired' | undefined {
    const file = this.files.get(token);
    if (!file) return undefined;
    return file.expiresAt <= Date.now() ? 'expired' : file;
  }

  /**
   * Answers a download of `token`: an injected failure, `expiredStatus` for an expired or unknown
   * token, or the bytes with their type and length. True when it answered (always).
   */
  serve(res: ServerResponse, token: string, expiredStatus: number): true {
    const failure = this.failures.shift();
    const file = this.lookup(token);
    if (failure !== undefined || !file || file === 'expired') {
      const status = failure ?? expiredStatus;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: status >= 500 ? 'Service Unavailable' : 'file not found or expired' }));
      return true;
    }
    this.downloads.push(token);
    res.writeHead(200, {
      'content-type': file.mimeType,
      'content-length': String(file.bytes.length),
      ...(file.fileName ? { 'content-disposition': `attachment; filename="${file.fileName}"` } : {}),
    });
    res.end(file.bytes);
    return true;
  }
}
