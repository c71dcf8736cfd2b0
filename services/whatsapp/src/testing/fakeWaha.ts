import type { IncomingMessage } from 'node:http';
import { FakeGatewayServer, text } from './fakeHttp.js';

/**
 * A fake WAHA for tests, answering as its source does (github.com/devlikeapro/waha; docs/providers/waha.md):
 * `X-Api-Key` checked on every call (401), NestJS's error body `{statusCode, message, error}`, an unknown
 * session 404 ("We didn't find a session with name …") and one that is not `WORKING` 422 ("Session status
 * is not as expected"), the request DTOs' fields (`session` defaults to `default`; `chatId` a `@c.us` or
 * `@g.us` id; `text`; a remote `file` with `url` and `mimetype`), and a send answered 201 with the
 * engine's message: NOWEB's Baileys `WAMessage` (`key.id`) or WEBJS's whatsapp-web.js `Message`
 * (`id: {id, _serialized}` and `_data.id`).
 */
export interface FakeWahaOptions {
  apiKey?: string;
  /** Sessions and their status (`WORKING` sends; anything else is refused 422). */
  sessions?: Record<string, string>;
  engine?: 'NOWEB' | 'WEBJS';
}

const SEND_PATHS = ['/api/sendText', '/api/sendImage', '/api/sendVideo', '/api/sendVoice', '/api/sendFile'];

export class FakeWaha extends FakeGatewayServer {
  readonly apiKey: string;
  readonly sessions: Map<string, string>;
  /** `sendSeen` calls, as received. */
  readonly seen: { session: string; chatId: string; messageId?: string | undefined }[] = [];

  constructor(private readonly options: FakeWahaOptions = {}) {
    super('x-api-key');
    this.apiKey = options.apiKey ?? 'fake-waha-api-key';
    this.sessions = new Map(Object.entries(options.sessions ?? {}));
  }

  protected handle(req: IncomingMessage, path: string, body: unknown): { status: number; body: unknown } {
    const error = (statusCode: number, name: string, message: unknown) => ({
      status: statusCode,
      body: { statusCode, message, error: name },
    });
    if (req.headers['x-api-key'] !== this.apiKey)
      return { status: 401, body: { message: 'Unauthorized', statusCode: 401 } };
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
    if (path !== '/api/sendText' && (!/^https?:\/\//.test(text(file, 'url') ?? '') || !text(file, 'mimetype')))
      return error(400, 'Bad Request', 'file needs url and mimetype');
    const id = this.accept(session, path, fields);
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
}
