import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from './httpServer.js';
import { HttpError, MethodNotAllowedError, sendProblem } from './problems.js';

/** What a route handler gets besides the request and response. */
export interface RouteContext {
  requestId: string;
  /** The path parameters, percent-decoded (a bad escape is kept as given). */
  params: Record<string, string>;
  /** The request path, without the query. */
  path: string;
}

/** Answers one request; throws an {@link HttpError} to answer problem-details JSON. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, context: RouteContext) => void | Promise<void>;

/**
 * One entry of a route table. `path` is literal segments and parameters:
 * - `:name` matches one segment (`/api/whatsapp/:session/messages`);
 * - `:name(<regex>)` matches one segment the regex (without capturing groups) matches (`:event([a-z0-9-]+)`);
 * - a trailing `?` makes the last parameter optional, its slash included (`/webhooks/evolution/:event?`);
 * - `*name` as the last segment matches the rest of the path, slashes included, possibly empty.
 */
export interface RouteSpec {
  method: string;
  path: string;
  handler: RouteHandler;
}

export interface RouteTableOptions {
  /** Answer `HEAD` with the `GET` handler where `GET` is declared (Node sends no body for `HEAD`). */
  headForGet?: boolean;
  /** Headers added to every problem answer (`cache-control: no-store`, say). */
  problemHeaders?: Record<string, string>;
  /** Called before a thrown {@link HttpError} is answered (to log it). */
  onProblem?: (error: HttpError, context: { requestId: string; path: string; method: string }) => void;
}

/** A path's handlers by method; `allow` is what a 405 answers. */
interface PathEntry {
  methods: Map<string, RouteHandler>;
  allow: string[];
  pattern?: RegExp;
  params: string[];
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Compiles a path template to a regex once (at build, never per request). */
function compilePath(path: string): { pattern?: RegExp; params: string[] } {
  if (!path.startsWith('/')) throw new Error(`route path must start with '/': ${path}`);
  if (!/[:*]/.test(path)) return { params: [] };
  const segments = path.slice(1).split('/');
  const params: string[] = [];
  let source = '^';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    const param = /^:([A-Za-z_][A-Za-z0-9_]*)(?:\((.+)\))?(\?)?$/.exec(segment);
    const rest = /^\*([A-Za-z_][A-Za-z0-9_]*)$/.exec(segment);
    if (param) {
      const [, name, constraint, optional] = param;
      if (optional && !last) throw new Error(`only the last parameter can be optional: ${path}`);
      params.push(name!);
      const group = constraint ? `((?:${constraint}))` : '([^/]+)';
      source += optional ? `(?:/${group})?` : `/${group}`;
    } else if (rest) {
      if (!last) throw new Error(`a rest parameter must be the last segment: ${path}`);
      params.push(rest[1]!);
      source += '/(.*)';
    } else {
      if (/[:*]/.test(segment)) throw new Error(`not a path segment: ${segment} in ${path}`);
      source += `/${escapeRegex(segment)}`;
    }
  });
  return { pattern: new RegExp(`${source}$`), params };
}

function decodeParam(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The result of a lookup: a handler with its parameters, or the methods the path allows. */
export type RouteMatch =
  { handler: RouteHandler; params: Record<string, string> } | { handler?: undefined; allow: readonly string[] };

/**
 * A declarative route table: paths compiled once, literal paths found in a map, parametrized ones
 * tried in declaration order. A known path asked with another method answers 405 with `Allow`; an
 * unknown path falls through (the server answers its JSON 404).
 */
export class RouteTable {
  private readonly literal = new Map<string, PathEntry>();
  private readonly patterns: PathEntry[] = [];

  constructor(
    routes: readonly RouteSpec[],
    private readonly options: RouteTableOptions = {},
  ) {
    const byPath = new Map<string, PathEntry>();
    for (const route of routes) {
      let entry = byPath.get(route.path);
      if (!entry) {
        entry = { methods: new Map(), allow: [], ...compilePath(route.path) };
        byPath.set(route.path, entry);
        if (entry.pattern) this.patterns.push(entry);
        else this.literal.set(route.path, entry);
      }
      const method = route.method.toUpperCase();
      if (entry.methods.has(method)) throw new Error(`${method} ${route.path} is declared twice`);
      entry.methods.set(method, route.handler);
      entry.allow.push(method);
    }
    if (options.headForGet) {
      for (const entry of byPath.values())
        if (entry.methods.has('GET') && !entry.methods.has('HEAD'))
          entry.allow.splice(entry.allow.indexOf('GET') + 1, 0, 'HEAD');
    }
  }

  /** The handler for a method and path (without the query), or what the path allows, or undefined for an unknown path. */
  match(method: string, path: string): RouteMatch | undefined {
    let entry = this.literal.get(path);
    let params = NO_PARAMS;
    if (!entry) {
      for (const candidate of this.patterns) {
        const found = candidate.pattern!.exec(path);
        if (!found) continue;
        entry = candidate;
        params = {};
        for (let i = 0; i < candidate.params.length; i++) {
          const value = found[i + 1];
          if (value !== undefined) params[candidate.params[i]!] = decodeParam(value);
        }
        break;
      }
      if (!entry) return undefined;
    }
    const handler =
      entry.methods.get(method) ??
      (method === 'HEAD' && this.options.headForGet ? entry.methods.get('GET') : undefined);
    return handler ? { handler, params } : { allow: entry.allow };
  }

  /**
   * The table as a server route (for `createHttpServer`): resolves false for an unknown path, answers
   * 405 for a known path with another method, and answers a thrown {@link HttpError} as problem-details JSON.
   */
  readonly route: Route = async (req, res, requestId) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const method = req.method ?? 'GET';
    const found = this.match(method, path);
    if (!found) return false;
    try {
      if (!found.handler) throw new MethodNotAllowedError(found.allow);
      await found.handler(req, res, { requestId, params: found.params, path });
    } catch (error) {
      if (!(error instanceof HttpError) || res.headersSent) throw error;
      this.options.onProblem?.(error, { requestId, path, method });
      sendProblem(res, error, requestId, this.options.problemHeaders);
    }
    return true;
  };
}
