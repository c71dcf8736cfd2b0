import { HttpError, type ProblemDetail } from '@puente/runtime';

/*
 * The gateway's failures, each a runtime HttpError whose code gets its status from the one table
 * (`ProblemStatus`); the route table answers them as problem-details JSON.
 */

/** Missing or wrong credentials (secret, token, signature, JWT): 401. */
export class UnauthorizedError extends HttpError {
  constructor(message = 'missing or invalid credentials') {
    super('unauthorized', message);
  }
}

/** Valid credentials without the right to this resource: 403, the problem naming what is refused. */
export class ForbiddenError extends HttpError {
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('forbidden', message, { fields });
  }
}

/** A body over the limit, declared or read: 413 (shared with realtime, in libs/runtime). */
export { PayloadTooLargeError } from '@puente/runtime';

/** A body that is not JSON: 400. */
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

/** JetStream did not acknowledge: 503 with `Retry-After`; nothing was accepted. */
export class BusUnavailableAnswer extends HttpError {
  constructor(cause: unknown, retryAfterSeconds = 5) {
    super('bus_unavailable', 'the event bus did not acknowledge; retry later, nothing was accepted', {
      cause,
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}
