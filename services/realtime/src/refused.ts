import { HttpError, type ProblemCode } from '@puente/runtime';

/**
 * A refused HTTP request: problem-details JSON that also keeps the members realtime's clients read
 * (`message`, and whatever else the refusal names, such as `channel`), as the WebSocket's error frames have them.
 */
export function refused(
  code: ProblemCode,
  message: string,
  fields: Record<string, unknown> = {},
  headers?: Record<string, string>,
): HttpError {
  return new HttpError(code, message, { fields: { message, ...fields }, ...(headers ? { headers } : {}) });
}
