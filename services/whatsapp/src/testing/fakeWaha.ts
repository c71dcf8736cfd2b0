import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeGatewayServer, strictBase64, text } from './fakeHttp.js';
import { FakeMediaFiles } from './fakeMedia.js';

/**
 * A fake WAHA for tests, answering as its source does (github.com/devlikeapro/waha; docs/providers/waha.md):
 * `X-Api-Key` checked on every call (401), NestJS's error body `{statusCode, message, error}`, an unknown
 * session 404 ("We didn't find a session with name …") and one that is not `WORKING` 422 ("Session status
 * is not as expected"), the request DTOs' fields (`session` defaults to `default`; `chatId` a `@c.us` or
 * `@g.us` id; `text`; a `file` with `mimetype` and either `url` or base64 `data`, an inline one kept in
 * `files`), and a send answered 201 with the
 * engine's message: NOWEB's Baileys `WAMessage` (`key.id`) or WEBJS's whatsapp-web.js `Message`
 * (`id: {id, _serialized}` and `_data.id`). For a full sync it lists what `history` holds as the source
 * does: `GET /api/contacts/all?session=` (all at once), `GET /api/{session}/chats?limit=&offset=` and
 * `GET /api/{session}/chats/{chatId}/messages?limit=` (the newest `limit`, default 100), NOWEB's shapes.
 * Media: files on `/api/files/{session}/{token}.{ext}` (`X-Api-Key`), 404 once their lifetime (`fileTtlMs`)
 * passed; `GET /api/{session}/chats/{chatId}/messages/{serialized id}?downloadMedia=true` answers the
 * message with a fresh file's `media.url`, 404 for a message WAHA no longer has.
 */
export interface FakeWahaOptions {
  apiKey?: string;
  /** Sessions and their status (`WORKING` sends; anything else is refused 422). */
  sessions?: Record<string, string>;
  engine?: 'NOWEB' | 'WEBJS';
  /** How long a file on WAHA's file server lives (WAHA's files lifetime) before it answers 404. */
  fileTtlMs?: number;
}

/** A session's history as NOWEB lists it: contacts (`@c.us`), chats (store order), messages per chat id, newest first. */
export interface FakeWahaHistory {
  contacts: Record<string, unknown>[];
  chats: Record<string, unknown>[];
  messages: Record<string, Record<string, unknown>[]>;
}

const SEND_PATHS = ['/api/sendText', '/api/sendImage', '/api/sendVideo', '/api/sendVoice', '/api/sendFile'];

export class FakeWaha extends FakeGatewayServer {
  readonly apiKey: string;
  readonly sessions: Map<string, string>;
  /** `sendSeen` calls, as received. */
  readonly seen: { session: string; chatId: string; messageId?: string | undefined }[] = [];
  /** What each session lists for a full sync. */
  readonly history = new Map<string, FakeWahaHistory>();
  /** WAHA's file server (`/api/files/<session>/<token>`, `X-Api-Key`; 404 once a file's lifetime passed). */
  readonly mediaFiles: FakeMediaFiles;
  /** Media WAHA can download again, per serialized message id (`<fromMe>_<chat>_<id>`), for `downloadMedia=true`. */
  readonly media = new Map<string, { bytes: Buffer; mimeType: string; fileName?: string }>();

  constructor(private readonly options: FakeWahaOptions = {}) {
    super('x-api-key');
    this.apiKey = options.apiKey ?? 'fake-waha-api-key';
    this.sessions = new Map(Object.entries(options.sessions ?? {}));
    this.mediaFiles = new FakeMediaFiles(options.fileTtlMs ?? 180_000);
  }

  /**
   * Media of a message WAHA received (`chatId` in `@c.us` form): downloaded to its file server, the
   * `media.url` its webhook carries.
   */
  addMedia(
    session: string,
    message: { chatId: string; id: string; fromMe: boolean },
    file: { bytes: Buffer; mimeType: string; fileName?: string },
  ): string {
    this.media.set(`${message.fromMe}_${message.chatId}_${message.id}`, file);
    return this.fileUrl(session, file);
  }

  private fileUrl(session: string, file: { bytes: Buffer; mimeType: string; fileName?: string }): string {
    const extension = file.mimeType.split('/')[1]?.split(';')[0] ?? 'bin';
    return `${this.url}/api/files/${encodeURIComponent(session)}/${this.mediaFiles.add(file)}.${extension}`;
  }

  protected override serveFile(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const file = /^\/api\/files\/[^/]+\/([0-9a-f]+)\.[\w-]+$/.exec(path);
    if (req.method !== 'GET' || !file) return false;
    if (req.headers['x-api-key'] !== this.apiKey) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Unauthorized', statusCode: 401 }));
      return true;
    }
    return this.mediaFiles.serve(res, file[1]!, 404);
  }

  protected handle(req: IncomingMessage, path: string, body: unknown): { status: number; body: unknown } {
    const error = (statusCode: number, name: string, message: unknown) => ({
      status: statusCode,
      body: { statusCode, message, error: name },
    });
    if (req.headers['x-api-key'] !== this.apiKey)
      return { status: 401, body: { message: 'Unauthorized', statusCode: 401 } };
    if (req.method === 'GET') return this.list(req, path, error);
    if (req.method !== 'POST' || (path !== '/api/sendSeen' && !SEND_PATHS.includes(path)))
      return error(404, 'Not Found', `Cannot ${req.method ?? 'GET'} ${path}`);
    const fields = (body ?? {}) as Record<string, unknown>;
    const session = text(fields, 'session') ?? 'default';
    const status = this.sessions.get(session);
    if (status === undefined)
      return error(
        404,
        'Not Found',
        `We didn't find a session with name '${session}'.\nPlease start it first by using POST /api/sessions/${session}/start request`,
      );
    if (status !== 'WORKING')
      return {
        status: 422,
        body: {
          error: 'Session status is not as expected. Try again later or restart the session',
          session,
          status,
          expected: ['WORKING'],
        },
      };
    const chatId = text(fields, 'chatId');
    if (!chatId || !/^[^@]+@(c\.us|g\.us)$/.test(chatId))
      return error(400, 'Bad Request', 'chatId must be <id>@c.us or <id>@g.us');
    if (path === '/api/sendSeen') {
      this.seen.push({ session, chatId, messageId: text(fields, 'messageId') });
      return { status: 201, body: {} };
    }
    if (path === '/api/sendText' && typeof fields.text !== 'string')
      return error(400, 'Bad Request', 'text must be a string');
    const file = fields.file as Record<string, unknown> | undefined;
    const inline = path !== '/api/sendText' ? strictBase64(file?.data) : undefined;
    if (
      path !== '/api/sendText' &&
      ((!inline && !/^https?:\/\//.test(text(file, 'url') ?? '')) || !text(file, 'mimetype'))
    )
      return error(400, 'Bad Request', 'file needs mimetype and url or data (base64)');
    const id = this.accept(session, path, fields);
    if (inline)
      this.files.set(id, { bytes: inline, mimetype: text(file, 'mimetype')!, fileName: text(file, 'filename') });
    const remote = chatId;
    const serialized = `true_${remote}_${id}`;
    if (this.options.engine === 'WEBJS') {
      const messageId = { fromMe: true, remote, id, _serialized: serialized };
      return {
        status: 201,
        body: {
          _data: { id: messageId, body: fields.text ?? '', type: path === '/api/sendText' ? 'chat' : 'media' },
          id: messageId,
          ack: 0,
          body: fields.text ?? '',
          fromMe: true,
          to: remote,
          timestamp: Math.floor(Date.now() / 1000),
        },
      };
    }
    return {
      status: 201,
      body: {
        key: { remoteJid: remote.replace(/@c\.us$/, '@s.whatsapp.net'), fromMe: true, id },
        message:
          path === '/api/sendText'
            ? { extendedTextMessage: { text: fields.text } }
            : { documentMessage: { url: file?.url } },
        messageTimestamp: String(Math.floor(Date.now() / 1000)),
        status: 'PENDING',
      },
    };
  }

  private list(
    req: IncomingMessage,
    path: string,
    error: (statusCode: number, name: string, message: unknown) => { status: number; body: unknown },
  ): { status: number; body: unknown } {
    const query = new URL(req.url ?? '/', 'http://fake').searchParams;
    const one = /^\/api\/([^/]+)\/chats\/([^/]+)\/messages\/([^/]+)$/.exec(path);
    if (one) {
      const session = decodeURIComponent(one[1]!);
      if (this.sessions.get(session) !== 'WORKING')
        return error(422, 'Unprocessable Entity', `Session status is not as expected: ${session}`);
      const serialized = decodeURIComponent(one[3]!);
      const media = this.media.get(serialized);
      if (!media) return error(404, 'Not Found', `Message not found: ${serialized}`);
      const download = query.get('downloadMedia') !== 'false';
      const [fromMe, chatId] = serialized.split('_');
      return {
        status: 200,
        body: {
          id: serialized,
          timestamp: Math.floor(Date.now() / 1000),
          from: fromMe === 'true' ? undefined : chatId,
          fromMe: fromMe === 'true',
          body: '',
          hasMedia: true,
          media: download
            ? { url: this.fileUrl(session, media), mimetype: media.mimeType, filename: media.fileName ?? null }
            : null,
        },
      };
    }
    const contacts = path === '/api/contacts/all';
    const match = /^\/api\/([^/]+)\/chats(?:\/([^/]+)\/messages)?$/.exec(path);
    if (!contacts && !match) return error(404, 'Not Found', `Cannot GET ${path}`);
    const session = contacts ? (query.get('session') ?? 'default') : decodeURIComponent(match![1]!);
    if (this.sessions.get(session) !== 'WORKING')
      return error(422, 'Unprocessable Entity', `Session status is not as expected: ${session}`);
    const history = this.history.get(session) ?? { contacts: [], chats: [], messages: {} };
    const number = (name: string, fallback?: number) => {
      const value = query.get(name);
      return value === null ? fallback : Number(value);
    };
    if (contacts) return { status: 200, body: history.contacts };
    if (match![2] === undefined) {
      const offset = number('offset', 0)!;
      const limit = number('limit');
      return { status: 200, body: history.chats.slice(offset, limit === undefined ? undefined : offset + limit) };
    }
    const chatId = decodeURIComponent(match![2]).replace(/@s\.whatsapp\.net$/, '@c.us');
    return { status: 200, body: (history.messages[chatId] ?? []).slice(0, number('limit', 100)) };
  }
}
