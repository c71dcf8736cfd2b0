import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type Logger } from '@puente/runtime';
import { GatewayError, MethodNotAllowedError, problemBody } from './http/errors.js';

/** Answers one request whose path matched; path parameters are decoded. */
export type Handler = (req: IncomingMessage, res: ServerResponse, requestId: string, params: Record<string, string>) => Promise<void>;

/** One path and the handler of each method it accepts (another method answers 405 naming them). */
export interface RouteEntry {
  path: RegExp;
  params: string[];
  methods: Record<string, Handler>;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A route path as a regular expression and its parameter names: literal segments, `:name` (`[^/]+`),
 * `:name(regex)` for a narrower one, and a trailing `?` making that segment, slash included, optional.
 */
export function compilePath(path: string): { path: RegExp; params: string[] } {
  const params: string[] = [];
  const source = path.split('/').filter(Boolean).map((segment) => {
    const param = /^:([A-Za-z_]\w*)(?:\((.+)\))?(\?)?$/.exec(segment);
    if (!param) return `\\/${escape(segment)}`;
    params.push(param[1]!);
    return param[3] ? `(?:\\/(${param[2] ?? '[^/]+'}))?` : `\\/(${param[2] ?? '[^/]+'})`;
  }).join('');
  return { path: new RegExp(`^${source}$`), params };
}

/**
 * The request handler over a route table: the first entry whose path matches answers; a GatewayError
 * becomes problem-details JSON with its status. False when no path matches (the server answers 404).
 */
export function dispatch(routes: readonly RouteEntry[], logger: Logger): (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<boolean> {
  return async (req, res, requestId) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const entry = routes.find((r) => r.path.test(path));
    if (!entry) return false;
    try {
      const handler = entry.methods[req.method ?? ''];
      if (!handler) throw new MethodNotAllowedError(Object.keys(entry.methods));
      const match = entry.path.exec(path)!;
      const params: Record<string, string> = {};
      entry.params.forEach((name, i) => {
        const value = match[i + 1];
        if (value === undefined) return;
        try {
          params[name] = decodeURIComponent(value);
        } catch {
          params[name] = value;
        }
      });
      await handler(req, res, requestId, params);
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
      if (error.status >= 500) logger.warn({ requestId, code: error.code, err: error.cause }, error.message);
      else logger.info({ requestId, code: error.code, path }, error.message);
      sendJson(res, error.status, problemBody(error, requestId), { 'content-type': 'application/problem+json', ...error.headers });
    }
    return true;
  };
}
