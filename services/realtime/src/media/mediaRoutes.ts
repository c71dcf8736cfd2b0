import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Db } from 'mongodb';
import {
  channelAllowed,
  Channels,
  Collections,
  ErrorCodes,
  type MediaFailureCode,
  type TokenClaims,
} from '@puente/contracts';
import { MediaCorruptError, type MediaStore, type StoredMedia } from '@puente/media';
import {
  HttpError,
  sendJson,
  verifyAccessToken,
  type Logger,
  type RouteSpec,
  type TokenRevocations,
} from '@puente/runtime';
import { refused } from '../refused.js';
import { byteRangeOf, ifRangeHolds, noneMatchHits } from './byteRange.js';
import { MediaLinks } from './mediaLinks.js';
import { contentDisposition, servedContentType, servedInline } from './userContent.js';

/** What the media routes need: the read models' database, the media store, the JWT secrets and the link lifetime. */
export interface MediaRoutesOptions {
  db: Db;
  media: MediaStore;
  secrets: readonly string[];
  /** Revoked tokens are refused (signed links expire on their own). */
  revocations: TokenRevocations;
  linkTtlSeconds: number;
  logger: Logger;
  /** The clock, milliseconds since the epoch (tests pin it). */
  now?: () => number;
}

/** A message's media on `wa_messages`, as the media projection keeps it (the shared shape of issue 19). */
interface MessageMedia {
  state?: 'stored' | 'unavailable';
  hash?: string;
  bytes?: number;
  mimeType?: string;
  fileName?: string;
  error?: { code: MediaFailureCode; message: string };
}

/** The members of a `wa_messages` document the media routes read. */
interface MessageDoc {
  _id: string;
  session: string;
  chatId: string;
  media?: MessageMedia;
  _deleted?: boolean;
}

/** Who is asking: a token's holder, or the bearer of a signed link (valid until `expires`, seconds). */
type Access = { via: 'token'; claims: TokenClaims } | { via: 'link'; expires: number };

/** How soon to ask again for media not kept yet: the media consumer downloads it within seconds. */
const NOT_STORED_RETRY_AFTER_S = 5;
const NO_STORE = { 'cache-control': 'no-store' };

/**
 * `GET`/`HEAD /media/<session>/<message id>` (a message's stored media: ranges, validators, safe headers)
 * and `POST /media/<session>/<message id>/link` (a short-lived signed link to it). Both are allowed to a
 * token whose channels allow the message's chat (`whatsapp.messages.<session>.<chat>`); `GET` also to a
 * signed link. Tokens are only read from `Authorization`, never from the URL.
 */
export function mediaRoutes(options: MediaRoutesOptions): RouteSpec[] {
  const { db, media, logger } = options;
  const now = options.now ?? Date.now;
  const links = new MediaLinks(options.secrets, options.linkTtlSeconds);
  const messages = db.collection<MessageDoc>(Collections.waMessages);

  const bearer = async (req: IncomingMessage, url: URL): Promise<Access> => {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer '))
      throw refused(
        ErrorCodes.unauthorized,
        url.searchParams.has('token')
          ? '/media never takes a token in the URL: send Authorization: Bearer <token>, or use a signed link'
          : 'no credentials: Authorization: Bearer <token>, or a signed link',
      );
    const verified = await verifyAccessToken(header.slice(7).trim(), options.secrets, options.revocations, now());
    if (!verified.ok) throw refused(ErrorCodes.unauthorized, verified.reason);
    return { via: 'token', claims: verified.claims };
  };

  /** The message, when it exists and is not deleted, and the asker may read its chat. */
  const message = async (session: string, messageId: string, access: Access): Promise<MessageDoc> => {
    const doc = await messages.findOne(
      { _id: `${session}:${messageId}` },
      { projection: { session: 1, chatId: 1, media: 1, _deleted: 1 } },
    );
    // The key joins session and id with `:`, which both may contain: the document must be the session's.
    if (!doc || doc._deleted === true || doc.session !== session || typeof doc.chatId !== 'string')
      throw refused('not_found', 'no such message');
    if (access.via === 'token') {
      const channel = Channels.whatsappMessages(session, doc.chatId);
      if (!access.claims.channels.some((pattern) => channelAllowed(pattern, channel)))
        throw refused(ErrorCodes.forbidden, "the token does not allow this message's chat", { channel });
    }
    return doc;
  };

  /** The stored item behind a message's media, or the answer for media that is not (or no longer) there. */
  const storedItem = async (doc: MessageDoc, requestId: string): Promise<StoredMedia> => {
    const kept = doc.media;
    if (!kept) throw refused('not_found', 'the message has no media');
    switch (kept.state) {
      case undefined:
        throw refused(
          'media_not_stored',
          'the media is not kept yet',
          {},
          {
            'retry-after': String(NOT_STORED_RETRY_AFTER_S),
          },
        );
      case 'unavailable':
        // `error` as the message keeps it: the provider's failure code (EXPIRED, NOT_FOUND, ...) and message.
        throw refused('media_unavailable', kept.error?.message ?? 'the media could not be kept', {
          ...(kept.error ? { error: { code: kept.error.code, message: kept.error.message } } : {}),
        });
      case 'stored':
        break;
      default: {
        const never: never = kept.state;
        throw new Error(`unknown media state ${String(never)}`);
      }
    }
    const item = kept.hash === undefined ? undefined : await media.stat(kept.hash);
    if (!item || (kept.bytes !== undefined && kept.bytes !== item.length)) {
      logger.error(
        { requestId, message: doc._id, hash: kept.hash, bytes: kept.bytes, length: item?.length },
        'stored media is missing from the media store, or is not the item the message names',
      );
      throw new HttpError('internal', 'the stored media item is missing');
    }
    return item;
  };

  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    doc: MessageDoc,
    item: StoredMedia,
    access: Access,
    requestId: string,
  ): Promise<void> => {
    const etag = `"${item.hash}"`;
    const cacheControl =
      access.via === 'link' ? `private, max-age=${Math.max(0, access.expires - Math.floor(now() / 1000))}` : 'private';
    if (noneMatchHits(req.headers['if-none-match'], etag)) {
      res.writeHead(304, { etag, 'cache-control': cacheControl });
      res.end();
      return;
    }
    const contentType = servedContentType(doc.media?.mimeType ?? item.contentType);
    const headers: Record<string, string> = {
      'content-type': contentType,
      'accept-ranges': 'bytes',
      etag,
      'cache-control': cacheControl,
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'content-disposition': contentDisposition(servedInline(contentType), doc.media?.fileName ?? item.fileName),
    };
    const asked = ifRangeHolds(single(req.headers['if-range']), etag)
      ? byteRangeOf(req.headers.range, item.length)
      : ({ kind: 'whole' } as const);
    if (asked.kind === 'unsatisfiable')
      throw refused(
        'range_not_satisfiable',
        `the item has ${item.length} bytes`,
        {},
        {
          'content-range': `bytes */${item.length}`,
        },
      );
    const range = asked.kind === 'partial' ? asked.range : { start: 0, end: item.length - 1 };
    const status = asked.kind === 'partial' ? 206 : 200;
    headers['content-length'] = String(range.end - range.start + 1);
    if (status === 206) headers['content-range'] = `bytes ${range.start}-${range.end}/${item.length}`;
    if (req.method === 'HEAD') {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    // The first chunk is read before the head goes out, so an item whose chunks are gone answers a
    // clean 500 instead of a truncated 200.
    const chunks = media.read(item, range);
    let first: IteratorResult<Buffer>;
    try {
      first = await chunks.next();
    } catch (error) {
      if (!(error instanceof MediaCorruptError)) throw error;
      logger.error({ err: error, requestId, message: doc._id, hash: item.hash }, 'stored media is damaged');
      throw new HttpError('internal', 'the stored media item is damaged', { cause: error });
    }
    res.writeHead(status, headers);
    try {
      // pipeline waits for 'drain' between chunks and, when the client goes away, returns the
      // generator, which stops reading the store.
      await pipeline(async function* () {
        if (!first.done) yield first.value;
        yield* chunks;
      }, res);
    } catch (error) {
      if (error instanceof MediaCorruptError)
        logger.error({ err: error, requestId, message: doc._id, hash: item.hash }, 'stored media is damaged');
      else if (!res.destroyed || res.writableFinished) throw error;
      // Otherwise the client went away: nothing to answer, nothing to log.
    }
  };

  return [
    {
      method: 'GET',
      path: '/media/:session/:messageId',
      handler: async (req, res, { params, requestId }) => {
        const session = params.session!;
        const messageId = params.messageId!;
        const url = new URL(req.url ?? '/', 'http://realtime');
        let access: Access;
        if (url.searchParams.has('signature') || url.searchParams.has('expires')) {
          const checked = links.verify(session, messageId, url.searchParams, now());
          if (!checked.ok) throw refused(ErrorCodes.forbidden, checked.reason);
          access = { via: 'link', expires: checked.expires };
        } else access = await bearer(req, url);
        const doc = await message(session, messageId, access);
        await serve(req, res, doc, await storedItem(doc, requestId), access, requestId);
      },
    },
    {
      method: 'POST',
      path: '/media/:session/:messageId/link',
      handler: async (req, res, { params }) => {
        const session = params.session!;
        const messageId = params.messageId!;
        const access = await bearer(req, new URL(req.url ?? '/', 'http://realtime'));
        await message(session, messageId, access);
        const link = links.sign(session, messageId, now());
        sendJson(res, 200, { url: link.url, expiresAt: link.expiresAt.toISOString() }, NO_STORE);
      },
    },
  ];
}

/** A header Node may hand over as a list: a repeated one, joined, matches no single validator. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
