import type { IncomingMessage } from 'node:http';
import { FakeGatewayServer, strictBase64, text } from './fakeHttp.js';

/**
 * A fake Evolution API v2 for tests, answering as its source does (github.com/EvolutionAPI/evolution-api;
 * docs/providers/evolution.md): the guards in their order (an unknown instance is 404 `The "x" instance
 * does not exist` before the key is looked at; a missing or wrong `apikey` is 401), the JSON schemas of
 * `sendText`, `sendMedia`, `sendWhatsAppAudio` and `markMessageAsRead` (400 with the validator's messages;
 * media a URL or plain base64, a base64 document only with `fileName`; inline files kept in `files`), a number that is
 * not on WhatsApp refused 400 `[{exists: false, jid, number}]`, errors in `{status, error, response:
 * {message}}`, and a send answered 201 with the Baileys `WAMessage` that left (`key.id`). For a full sync
 * it lists what `history` holds as the source does, answering 200: `findContacts` (`offset` per page,
 * `page`), `findChats` (`take`/`skip`) and `findMessages` (`where.key.remoteJid`, `offset`, `page`; newest
 * first, `{messages: {total, pages, currentPage, records}}`). Media: `getBase64FromMediaMessage` takes
 * `{message: {key: {id}}, convertToMp4}` and answers 201 `{mediaType, fileName, size, mimetype, base64}`
 * for what `media` holds, 400 (`Message not found`) otherwise, as the source's `BadRequestException`.
 */
export interface FakeEvolutionOptions {
  apiKey?: string;
  instances?: string[];
  /** Numbers (digits) that are not on WhatsApp. */
  notOnWhatsApp?: string[];
}

const MEDIA_TYPES = ['image', 'document', 'video', 'audio'];

/** An instance's history as Evolution stores it: contact rows, chat rows (most recent first), Baileys message rows. */
export interface FakeEvolutionHistory {
  contacts: Record<string, unknown>[];
  chats: Record<string, unknown>[];
  messages: { key: { remoteJid: string; id: string; fromMe: boolean }; messageTimestamp: number }[];
}

export class FakeEvolution extends FakeGatewayServer {
  readonly apiKey: string;
  readonly instances: Set<string>;
  /** Read receipts sent, one per key of each `markMessageAsRead`. */
  readonly reads: { instance: string; id: string; fromMe: boolean; remoteJid: string }[] = [];
  /** What each instance lists for a full sync. */
  readonly history = new Map<string, FakeEvolutionHistory>();
  /** Media Evolution can still decrypt, per `<instance>:<message id>` (`getBase64FromMediaMessage`). */
  readonly media = new Map<string, { bytes: Buffer; mimeType: string; fileName?: string }>();
  /** `getBase64FromMediaMessage` calls answered with a file. */
  mediaDownloads = 0;

  constructor(private readonly options: FakeEvolutionOptions = {}) {
    super('apikey');
    this.apiKey = options.apiKey ?? 'fake-evolution-global-key';
    this.instances = new Set(options.instances ?? []);
  }

  protected handle(req: IncomingMessage, path: string, body: unknown): { status: number; body: unknown } {
    const error = (status: number, name: string, message: unknown) => ({
      status,
      body: { status, error: name, response: { message } },
    });
    const route =
      /^\/(message\/sendText|message\/sendMedia|message\/sendWhatsAppAudio|chat\/markMessageAsRead|chat\/findContacts|chat\/findChats|chat\/findMessages|chat\/getBase64FromMediaMessage)\/([^/]+)$/.exec(
        path,
      );
    if (req.method !== 'POST' || !route) return error(404, 'Not Found', `Cannot ${req.method ?? 'GET'} ${path}`);
    const instance = decodeURIComponent(route[2]!);
    if (!this.instances.has(instance)) return error(404, 'Not Found', [`The "${instance}" instance does not exist`]);
    if (req.headers.apikey !== this.apiKey) return error(401, 'Unauthorized', 'Unauthorized');
    const fields = (body ?? {}) as Record<string, unknown>;
    if (route[1]!.startsWith('chat/find')) return this.find(instance, route[1]!, fields);
    if (route[1] === 'chat/getBase64FromMediaMessage') return this.base64(instance, fields);
    const invalid = (required: string[]) =>
      required.filter((field) => fields[field] === undefined).map((field) => `requires property "${field}"`);

    if (route[1] === 'chat/markMessageAsRead') {
      const keys = fields.readMessages;
      if (!Array.isArray(keys)) return error(400, 'Bad Request', invalid(['readMessages']));
      const bad = keys.some(
        (k: Record<string, unknown>) => !text(k, 'id') || typeof k.fromMe !== 'boolean' || !text(k, 'remoteJid'),
      );
      if (keys.length === 0 || bad)
        return error(400, 'Bad Request', ['readMessages items need id, fromMe and remoteJid']);
      for (const k of keys as { id: string; fromMe: boolean; remoteJid: string }[])
        this.reads.push({ instance, id: k.id, fromMe: k.fromMe, remoteJid: k.remoteJid });
      return { status: 201, body: { message: 'Read messages', read: 'success' } };
    }

    if (route[1] === 'message/sendWhatsAppAudio') return this.sendAudio(instance, path, fields, error);
    const media = route[1] === 'message/sendMedia';
    const missing = invalid(media ? ['number', 'mediatype'] : ['number', 'text']);
    if (missing.length > 0) return error(400, 'Bad Request', missing);
    if (typeof fields.number !== 'string') return error(400, 'Bad Request', ['Invalid format']);
    if (media && !MEDIA_TYPES.includes(String(fields.mediatype)))
      return error(400, 'Bad Request', [`mediatype is not one of enum values: ${MEDIA_TYPES.join(',')}`]);
    const inline = media ? strictBase64(fields.media) : undefined;
    if (media && !inline && !/^https?:\/\//.test(text(fields, 'media') ?? ''))
      return error(400, 'Bad Request', ['Owned media must be a url or base64']);
    if (inline && fields.mediatype === 'document' && !text(fields, 'fileName'))
      return error(400, 'Bad Request', ['For base64 the file name must be informed.']);
    if (!media && (typeof fields.text !== 'string' || fields.text.trim() === ''))
      return error(400, 'Bad Request', ['Text is required']);
    const number = fields.number.replace(/@.*$/, '').replace(/\D/g, '');
    const jid = fields.number.includes('@') ? fields.number : `${number}@s.whatsapp.net`;
    if (!jid.endsWith('@g.us') && (this.options.notOnWhatsApp ?? []).includes(number))
      return error(400, 'Bad Request', [{ exists: false, jid, number }]);
    const id = this.accept(instance, path, fields);
    if (inline) this.keepInline(id, inline, fields);
    const message = media
      ? { [`${String(fields.mediatype)}Message`]: { url: fields.media, caption: fields.caption } }
      : { conversation: fields.text };
    return {
      status: 201,
      body: {
        key: { remoteJid: jid, fromMe: true, id },
        pushName: '',
        status: 'PENDING',
        message,
        messageType: media ? `${String(fields.mediatype)}Message` : 'conversation',
        messageTimestamp: Math.floor(Date.now() / 1000),
        instanceId: `fake-${instance}`,
        source: 'unknown',
      },
    };
  }

  /** `sendWhatsAppAudio`: `audio` a URL or base64, sent as a voice note (`audioMessage` with `ptt`). */
  private sendAudio(
    instance: string,
    path: string,
    fields: Record<string, unknown>,
    error: (status: number, name: string, message: unknown) => { status: number; body: unknown },
  ): { status: number; body: unknown } {
    if (typeof fields.number !== 'string') return error(400, 'Bad Request', ['requires property "number"']);
    const inline = strictBase64(fields.audio);
    if (!inline && !/^https?:\/\//.test(text(fields, 'audio') ?? ''))
      return error(400, 'Bad Request', ['Owned media must be a url, base64, or valid file with buffer']);
    const jid = fields.number.includes('@') ? fields.number : `${fields.number.replace(/\D/g, '')}@s.whatsapp.net`;
    const id = this.accept(instance, path, fields);
    if (inline) this.files.set(id, { bytes: inline, mimetype: 'audio/ogg; codecs=opus' });
    return {
      status: 201,
      body: {
        key: { remoteJid: jid, fromMe: true, id },
        message: { audioMessage: { ptt: true, mimetype: 'audio/ogg; codecs=opus' } },
        messageType: 'audioMessage',
        messageTimestamp: Math.floor(Date.now() / 1000),
        status: 'PENDING',
      },
    };
  }

  /**
   * `getBase64FromMediaMessage`: the message by `message.key.id` (as Evolution looks it up in its store),
   * answered 201 with the decrypted file in base64; anything it cannot give is 400 (`BadRequestException`).
   */
  private base64(instance: string, fields: Record<string, unknown>): { status: number; body: unknown } {
    const key = ((fields.message ?? {}) as { key?: { id?: unknown } }).key;
    const refuse = (message: string) => ({
      status: 400,
      body: { status: 400, error: 'Bad Request', response: { message: [message] } },
    });
    if (typeof key?.id !== 'string') return refuse("TypeError: Cannot read properties of undefined (reading 'key')");
    const media = this.media.get(`${instance}:${key.id}`);
    if (!media) return refuse('Message not found');
    this.mediaDownloads++;
    const type = media.mimeType.split('/')[0];
    return {
      status: 201,
      body: {
        mediaType: `${type === 'application' ? 'document' : type}Message`,
        fileName: media.fileName ?? `${key.id}.bin`,
        caption: undefined,
        size: { fileLength: String(media.bytes.length) },
        mimetype: media.mimeType,
        base64: media.bytes.toString('base64'),
        buffer: null,
      },
    };
  }

  /** Keeps a base64 `sendMedia` file with the MIME type and name it was sent with. */
  private keepInline(id: string, bytes: Buffer, fields: Record<string, unknown>): void {
    this.files.set(id, {
      bytes,
      mimetype: text(fields, 'mimetype') ?? 'application/octet-stream',
      fileName: text(fields, 'fileName'),
    });
  }

  private find(instance: string, route: string, fields: Record<string, unknown>): { status: number; body: unknown } {
    const history = this.history.get(instance) ?? { contacts: [], chats: [], messages: [] };
    const num = (name: string) => (typeof fields[name] === 'number' ? fields[name] : undefined);
    if (route === 'chat/findChats') {
      const skip = num('skip') ?? 0;
      const take = num('take');
      return { status: 200, body: history.chats.slice(skip, take === undefined ? undefined : skip + take) };
    }
    // findContacts takes all when no offset; findMessages defaults to 50 a page.
    const page = Math.max(num('page') ?? 1, 1);
    if (route === 'chat/findContacts') {
      const offset = num('offset');
      return {
        status: 200,
        body: offset ? history.contacts.slice(offset * (page - 1), offset * page) : history.contacts,
      };
    }
    const offset = num('offset') ?? 50;
    const where = (fields.where ?? {}) as { key?: { remoteJid?: string } };
    const remoteJid = where.key?.remoteJid;
    const all = history.messages
      .filter((m) => !remoteJid || m.key.remoteJid === remoteJid)
      .sort((a, b) => b.messageTimestamp - a.messageTimestamp);
    return {
      status: 200,
      body: {
        messages: {
          total: all.length,
          pages: Math.ceil(all.length / offset),
          currentPage: page,
          records: all.slice(offset * (page - 1), offset * page),
        },
      },
    };
  }
}
