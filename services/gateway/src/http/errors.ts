/** A failure the gateway answers with a status and a stable code, as problem-details JSON. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { path?: string; message: string }[] = [],
    options?: ErrorOptions & { headers?: Record<string, string> },
  ) {
    super(message, options);
    this.headers = options?.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

export class UnauthorizedError extends GatewayError {
  constructor(message = 'missing or invalid credentials') {
    super(401, 'unauthorized', message);
  }
}

export class PayloadTooLargeError extends GatewayError {
  constructor(limit: number) {
    super(413, 'payload_too_large', `the body is larger than ${limit} bytes`);
  }
}

export class MalformedJsonError extends GatewayError {
  constructor(cause: unknown) {
    super(400, 'malformed_json', 'the body is not valid JSON', [], { cause });
  }
}

/** The body parsed but breaks the contract; `details` name the offending fields. */
export class ContractViolationError extends GatewayError {
  constructor(message: string, details: { path?: string; message: string }[]) {
    super(400, 'contract_violation', message, details);
  }
}

export class BusUnavailableAnswer extends GatewayError {
  constructor(cause: unknown, retryAfterSeconds = 5) {
    super(503, 'bus_unavailable', 'the event bus did not acknowledge; retry later, nothing was accepted', [], { cause, headers: { 'retry-after': String(retryAfterSeconds) } });
  }
}

export class MethodNotAllowedError extends GatewayError {
  constructor(allowed: string[]) {
    super(405, 'method_not_allowed', `use ${allowed.join(' or ')}`, [], { headers: { allow: allowed.join(', ') } });
  }
}

/** The problem-details body of an error answer (RFC 9457), with the request id. */
export function problemBody(error: GatewayError, requestId: string): Record<string, unknown> {
  return {
    type: `https://puente.dev/problems/${error.code}`,
    title: error.code.replace(/_/g, ' '),
    status: error.status,
    code: error.code,
    detail: error.message,
    ...(error.details.length > 0 ? { errors: error.details } : {}),
    requestId,
  };
}
