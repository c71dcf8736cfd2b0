/** A failure that will not go away by retrying (bad input, a broken invariant): straight to the DLQ. */
export class PermanentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The bus did not acknowledge a publish (no stream answered, timeout, disconnected). */
export class BusUnavailableError extends Error {
  readonly code = 'BUS_UNAVAILABLE';
}

/** Short, single-line description of an error for headers and logs; never includes secrets' values. */
export function describeError(error: unknown): { code: string; message: string } {
  const oneLine = (text: string) => text.replace(/\s+/g, ' ').slice(0, 1000);
  if (error instanceof Error) {
    const code =
      typeof (error as unknown as { code?: unknown }).code === 'string'
        ? (error as unknown as { code: string }).code
        : error.name;
    return { code, message: oneLine(error.message) };
  }
  // Frameworks wrap errors in plain objects (NestJS: `{ status: 'error', message }`).
  if (error && typeof error === 'object') {
    const { message, code } = error as { message?: unknown; code?: unknown };
    return {
      code: typeof code === 'string' ? code : 'ERROR',
      message: oneLine(typeof message === 'string' ? message : (JSON.stringify(error) ?? String(error))),
    };
  }
  return { code: 'UNKNOWN', message: oneLine(String(error)) };
}
