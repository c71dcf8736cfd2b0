import type { ServerResponse } from 'node:http';

/**
 * Every error code an HTTP edge (gateway, realtime) answers, with its status: the one place a code
 * gets a status. A new failure adds its code here, and docs/gateway.md's error table with it (realtime's
 * stored-media codes are in docs/realtime.md "Stored media", `bad_gateway` and `gateway_timeout` of its
 * command forwarding in "Commands").
 */
export const ProblemStatus = {
  bad_request: 400,
  malformed_json: 400,
  contract_violation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  unknown_channel: 404,
  media_not_stored: 404,
  method_not_allowed: 405,
  media_unavailable: 410,
  payload_too_large: 413,
  range_not_satisfiable: 416,
  internal: 500,
  bad_gateway: 502,
  bus_unavailable: 503,
  gateway_timeout: 504,
} as const satisfies Record<string, number>;
export type ProblemCode = keyof typeof ProblemStatus;

/** One offending field of a request (`errors` in the problem body). */
export interface ProblemDetail {
  path?: string;
  message: string;
}

export interface HttpErrorOptions extends ErrorOptions {
  /** The offending fields, answered as `errors`. */
  details?: readonly ProblemDetail[];
  /** Response headers the answer carries (`retry-after`, `allow`). */
  headers?: Record<string, string>;
  /** Members added to the body besides the problem-details ones (realtime keeps `message` and `channel` for its clients). */
  fields?: Record<string, unknown>;
}

/**
 * A failure an HTTP edge answers with problem-details JSON (RFC 9457): a stable `code`, its status
 * from {@link ProblemStatus}, and the message as `detail`. Handlers throw it; the route table answers it.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly details: readonly ProblemDetail[];
  readonly headers: Record<string, string>;
  readonly fields: Record<string, unknown> | undefined;

  constructor(
    readonly code: ProblemCode,
    message: string,
    options: HttpErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = ProblemStatus[code];
    this.details = options.details ?? [];
    this.headers = options.headers ?? {};
    this.fields = options.fields;
  }
}

/** A known path asked with a method it does not serve; `Allow` lists those it does. */
export class MethodNotAllowedError extends HttpError {
  constructor(allowed: readonly string[]) {
    super('method_not_allowed', `use ${allowed.join(' or ')}`, { headers: { allow: allowed.join(', ') } });
  }
}

/** The `outcome` label of a request metric: what an error means for the sender. */
export type ProblemOutcome = 'unauthorized' | 'too_large' | 'unavailable' | 'invalid' | 'error';

/**
 * The metric outcome of a failed request, derived from its status: 401 unauthorized, 413 too_large,
 * 503 unavailable, another 4xx invalid; anything else (a 5xx, or not an {@link HttpError}) error.
 */
export function problemOutcome(error: unknown): ProblemOutcome {
  if (!(error instanceof HttpError)) return 'error';
  const status = error.status;
  return status === 401
    ? 'unauthorized'
    : status === 413
      ? 'too_large'
      : status === 503
        ? 'unavailable'
        : status < 500
          ? 'invalid'
          : 'error';
}

/** The problem-details body of an error answer (RFC 9457), with the request id. */
export function problemBody(error: HttpError, requestId: string): Record<string, unknown> {
  return {
    type: `https://puente.dev/problems/${error.code}`,
    title: error.code.replace(/_/g, ' '),
    status: error.status,
    code: error.code,
    detail: error.message,
    ...(error.details.length > 0 ? { errors: error.details } : {}),
    ...error.fields,
    requestId,
  };
}

/** Answers an error as `application/problem+json` with its status and headers (and `headers`, e.g. `cache-control`). */
export function sendProblem(
  res: ServerResponse,
  error: HttpError,
  requestId: string,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(problemBody(error, requestId));
  res.writeHead(error.status, {
    'content-type': 'application/problem+json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
    ...error.headers,
  });
  res.end(text);
}
