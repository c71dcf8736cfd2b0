import { HttpError, type ProblemDetail } from '@puente/runtime';

/**
 * A failure the gateway answers with a status and a stable code, as problem-details JSON: the runtime's
 * {@link HttpError}, whose code gets its status from the one table (`ProblemStatus`).
 */
export { HttpError as GatewayError, MethodNotAllowedError, problemBody } from '@puente/runtime';

export class UnauthorizedError extends HttpError {
  constructor(message = 'missing or invalid credentials') {
    super('unauthorized', message);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(limit: number) {
    super('payload_too_large', `the body is larger than ${limit} bytes`);
  }
}

export class MalformedJsonError extends HttpError {
  constructor(cause: unknown) {
    super('malformed_json', 'the body is not valid JSON', { cause });
  }
}

/** The body parsed but breaks the contract; `details` name the offending fields. */
export class ContractViolationError extends HttpError {
  constructor(message: string, details: readonly ProblemDetail[]) {
    super('contract_violation', message, { details });
  }
}

export class BusUnavailableAnswer extends HttpError {
  constructor(cause: unknown, retryAfterSeconds = 5) {
    super('bus_unavailable', 'the event bus did not acknowledge; retry later, nothing was accepted', { cause, headers: { 'retry-after': String(retryAfterSeconds) } });
  }
}
