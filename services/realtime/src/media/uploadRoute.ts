import { ErrorCodes, mimeOfFileName } from '@puente/contracts';
import { MediaRejectedError, type MediaStore } from '@puente/media';
import { readBody, sendJson, verifyAccessToken, type RouteSpec, type TokenRevocations } from '@puente/runtime';
import { refused } from '../refused.js';

export interface UploadRouteOptions {
  /** Where uploads are kept: a store with the same item cap and budget as the whatsapp service's. */
  store: MediaStore;
  secrets: readonly string[];
  revocations: TokenRevocations;
  /** The largest upload accepted (bytes); larger is 413 before anything is stored. */
  maxBytes: number;
}

/** A MIME type as a request may name it (`type/subtype`, parameters dropped); else undefined. */
function mimeOf(header: string | undefined): string | undefined {
  const value = header?.split(';')[0]?.trim().toLowerCase();
  return value && /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+-]{1,128}$/.test(value) ? value : undefined;
}

/**
 * `POST /media/<session>?name=<file name>` (body: the file's bytes, `content-type` its type): puts a file
 * an agent attaches in the media store and answers 201 `{ hash, bytes, mimeType, fileName }`; the inbox
 * then sends it by hash through the command API. Only a token (`Authorization`, never the URL) whose
 * `send` claim names the session (or `*`) may upload; the size is capped (413) and the store's budget
 * holds (413 `BUDGET`).
 */
export function uploadRoute(options: UploadRouteOptions): RouteSpec {
  return {
    method: 'POST',
    path: '/media/:session',
    handler: async (req, res, { params }) => {
      const session = params.session!;
      const header = req.headers.authorization;
      if (!header?.startsWith('Bearer ')) {
        req.resume();
        throw refused(ErrorCodes.unauthorized, 'no credentials: Authorization: Bearer <token>');
      }
      const verified = await verifyAccessToken(header.slice(7).trim(), options.secrets, options.revocations);
      if (!verified.ok) {
        req.resume();
        throw refused(ErrorCodes.unauthorized, verified.reason);
      }
      const send = verified.claims.send ?? [];
      if (!send.includes('*') && !send.includes(session)) {
        req.resume();
        throw refused(
          ErrorCodes.forbidden,
          `the token of ${verified.claims.sub} may not send from session ${session}`,
          {
            session,
          },
        );
      }
      const url = new URL(req.url ?? '/', 'http://realtime');
      const name = url.searchParams.get('name')?.trim();
      // Path separators and control characters out: the name is shown and offered as a download's name.
      const fileName = name
        ? [...name]
            .map((c) => (c === '/' || c === '\\' || c.charCodeAt(0) < 32 ? '_' : c))
            .join('')
            .slice(0, 240)
        : undefined;
      const bytes = await readBody(req, options.maxBytes);
      if (bytes.length === 0) throw refused(ErrorCodes.badRequest, 'the file is empty');
      const declared = mimeOf(req.headers['content-type']);
      const mimeType =
        declared && declared !== 'application/octet-stream'
          ? declared
          : ((fileName ? mimeOfFileName(fileName) : undefined) ?? 'application/octet-stream');
      try {
        const { media } = await options.store.put(bytes, { contentType: mimeType, fileName });
        sendJson(
          res,
          201,
          { hash: media.hash, bytes: bytes.length, mimeType, ...(fileName ? { fileName } : {}) },
          { 'cache-control': 'no-store' },
        );
      } catch (error) {
        if (error instanceof MediaRejectedError)
          throw refused(error.code === 'EMPTY' ? ErrorCodes.badRequest : 'payload_too_large', error.message, {
            rejection: error.code,
          });
        throw error;
      }
    },
  };
}
