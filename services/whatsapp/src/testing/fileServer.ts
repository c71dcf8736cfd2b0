import { createServer, type IncomingHttpHeaders } from 'node:http';
import { closeServer, listenOnLoopback } from './fakeHttp.js';

/** A file a {@link FileServer} serves; `chunked` leaves out `content-length` (the reader cannot know the size ahead). */
export interface ServedFile {
  bytes: Buffer;
  contentType: string;
  chunked?: boolean;
}

/**
 * A loopback HTTP server for media URLs given to sends: `GET /<name>` answers what `files` holds under
 * that name (404 otherwise) and records every path asked for, with its request headers (what a test
 * checks credentials against).
 */
export class FileServer {
  readonly files = new Map<string, ServedFile>();
  readonly requests: string[] = [];
  readonly headers: IncomingHttpHeaders[] = [];
  url = '';
  private readonly server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://files').pathname;
    this.requests.push(path);
    this.headers.push(req.headers);
    const file = this.files.get(path.slice(1));
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (file.chunked) {
      res.writeHead(200, { 'content-type': file.contentType, 'transfer-encoding': 'chunked' });
      for (let at = 0; at < file.bytes.length; at += 1024) res.write(file.bytes.subarray(at, at + 1024));
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length });
    res.end(file.bytes);
  });

  async start(): Promise<this> {
    this.url = await listenOnLoopback(this.server);
    return this;
  }

  stop(): Promise<void> {
    return closeServer(this.server);
  }
}
