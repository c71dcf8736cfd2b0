/**
 * Errors of the Bitrix24 client. Every message is one line and never holds an access or refresh token,
 * the client secret or a webhook code: the client scrubs them (see `scrub`) before building an error.
 */

/** What Bitrix24 (or the way to it) answered, with the Bitrix error code kept verbatim. */
export interface BitrixApiErrorDetails {
  /** The Bitrix error code (`QUERY_LIMIT_EXCEEDED`, `ERROR_CORE`, `expired_token`, ...); may be `''`, as Bitrix sends for "Not found" and "Access denied". Transport failures use `TIMEOUT` and `NETWORK`. */
  code: string;
  /** HTTP status, when there was an answer. */
  status?: number | undefined;
  /** Bitrix's `error_description` (or what went wrong on the way), scrubbed. */
  description: string;
  /** The REST method called (`batch` for a batch). */
  method: string;
  /** True when the same call may succeed later (rate limits, timeouts, 5xx) and the retries were used up. */
  retryable: boolean;
}

/** A Bitrix24 REST call failed. */
export class BitrixApiError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly description: string;
  readonly method: string;
  readonly retryable: boolean;

  constructor(details: BitrixApiErrorDetails, options?: { cause?: unknown; message?: string }) {
    const status = details.status === undefined ? '' : ` (HTTP ${details.status})`;
    super(
      oneLine(
        options?.message ??
          `Bitrix24 ${details.method} failed${status}: ${details.code || 'error'}${details.description ? `: ${details.description}` : ''}`,
      ),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'BitrixApiError';
    this.code = details.code;
    this.status = details.status;
    this.description = details.description;
    this.method = details.method;
    this.retryable = details.retryable;
  }
}

/**
 * The token server refused the stored refresh token (`invalid_grant`): it expired, was revoked, or the
 * app was reinstalled. Only a new authorization by the operator helps.
 */
export class BitrixReauthRequiredError extends BitrixApiError {
  constructor(description: string, options?: { cause?: unknown }) {
    super(
      { code: 'invalid_grant', status: undefined, description, method: 'oauth/token', retryable: false },
      {
        ...options,
        message: `Bitrix24 refused the stored refresh token (invalid_grant${description ? `: ${description}` : ''}): authorize again with \`npx puente bitrix auth-url\`, then \`npx puente bitrix auth --code <code>\``,
      },
    );
    this.name = 'BitrixReauthRequiredError';
  }
}

/** OAuth is configured but no tokens are stored yet. */
export class BitrixNotAuthorizedError extends BitrixApiError {
  constructor() {
    super(
      {
        code: 'NOT_AUTHORIZED',
        status: undefined,
        description: 'no tokens stored',
        method: 'oauth/token',
        retryable: false,
      },
      {
        message:
          'Bitrix24 is not authorized yet: run `npx puente bitrix auth-url`, open the URL as a portal administrator, then `npx puente bitrix auth --code <code>` within 30 s',
      },
    );
    this.name = 'BitrixNotAuthorizedError';
  }
}

/** Neither a webhook URL nor a complete OAuth app is configured. */
export class BitrixNotConfiguredError extends Error {
  readonly code = 'BITRIX_NOT_CONFIGURED';
  constructor(message: string) {
    super(message);
    this.name = 'BitrixNotConfiguredError';
  }
}

/** True for Bitrix's "Not found" answer (`crm.company.update/get` of a deleted id: empty code, 400). */
export function isBitrixNotFound(error: unknown): boolean {
  return (
    error instanceof BitrixApiError && /not found/i.test(error.description) && error.code !== 'ERROR_METHOD_NOT_FOUND'
  );
}

/** Replaces every secret (longer than 3 characters) that occurs in `text` with `***`. */
export function scrub(text: string, secrets: Iterable<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length > 3) out = out.split(secret).join('***');
  }
  return out;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').slice(0, 500);
}
