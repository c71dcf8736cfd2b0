import type { z } from 'zod';
import type { OutgoingMedia } from '../commands/outgoingMedia.js';
import { ProviderError, requestJson, retryAfterMs, type JsonResponse } from '@puente/runtime';

/**
 * What the command handler asks of a Baileys-based gateway (Evolution API, WAHA): one send, and marking
 * a chat read. The gateways differ in paths and shapes; the handler's guarantees (at most once, rate,
 * pending → sent → read) are the same for both.
 */
export interface GatewayClient {
  /** Sends once; returns the provider's message id (the one its webhooks report statuses for). */
  send(session: string, input: GatewaySendInput): Promise<string>;
  /** Marks a chat read; `inbound` are the ids of its newest incoming messages, newest first (may be empty). */
  markRead(session: string, chatId: string, inbound: readonly string[]): Promise<void>;
}

export interface GatewaySendInput {
  /** The recipient's normalized JID (`…@s.whatsapp.net`, `…@g.us`, `…@lid`). */
  to: string;
  text?: string | undefined;
  /** Sent inline (base64): the gateway never fetches anything. */
  media?: OutgoingMedia;
}

/** The media a gateway client sends; stickers are not among them (each gateway has a separate sticker call, not used). */
export type GatewayMediaType = 'image' | 'video' | 'audio' | 'document';

/** Refuses a sticker before any request leaves: nothing was sent, so the send fails for good. */
export function sendableMedia(vendor: string, type: NonNullable<GatewaySendInput['media']>['type']): GatewayMediaType {
  if (type === 'sticker')
    throw new ProviderError('rejected', 'UNSUPPORTED_MEDIA', `stickers are not sent through ${vendor}`);
  return type;
}

/**
 * A gateway's non-2xx answer as a ProviderError: 429 is "not now" (not sent, retry), 401/403 the key
 * refused, 5xx "it may or may not have happened" (never retried for a send), any other 4xx a refusal.
 */
export function gatewayFailure(vendor: string, response: JsonResponse, detail: string): ProviderError {
  const { status } = response;
  if (status === 429)
    return new ProviderError(
      'rate_limited',
      '429',
      `${vendor} rate limit: ${detail}`,
      status,
      retryAfterMs(response.headers.get('retry-after')) ?? 1_000,
    );
  if (status === 401 || status === 403)
    return new ProviderError('auth', String(status), `${vendor} refused the API key: ${detail}`, status);
  if (status >= 500)
    return new ProviderError('unknown', String(status), `${vendor} failed (${status}): ${detail}`, status);
  return new ProviderError('rejected', String(status), `${vendor} refused the request (${status}): ${detail}`, status);
}

/** An error body's message as one line (gateways answer strings, arrays of strings, or objects). */
export function errorText(message: unknown, status: number): string {
  if (message === undefined || message === null || message === '') return `HTTP ${status}`;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.map((m) => errorText(m, status)).join('; ');
  return JSON.stringify(message);
}

/**
 * One `POST` of JSON to a gateway with its key header; a non-2xx answer is thrown as {@link gatewayFailure}
 * with the message `messageOf` finds in the gateway's error body.
 */
export async function postToGateway(
  vendor: string,
  request: { url: string; headers: Record<string, string>; body: unknown; timeoutMs: number },
  messageOf: (body: unknown) => unknown,
): Promise<JsonResponse> {
  return callGateway(vendor, { ...request, method: 'POST' }, messageOf);
}

/** One `GET` of a gateway's list (full sync), its failures as {@link postToGateway}'s. */
export async function getFromGateway(
  vendor: string,
  request: { url: string; headers: Record<string, string>; timeoutMs: number },
  messageOf: (body: unknown) => unknown,
): Promise<unknown> {
  return (await callGateway(vendor, { ...request, method: 'GET' }, messageOf)).body;
}

async function callGateway(
  vendor: string,
  request: { method: string; url: string; headers: Record<string, string>; body?: unknown; timeoutMs: number },
  messageOf: (body: unknown) => unknown,
): Promise<JsonResponse> {
  const response = await requestJson(
    request.url,
    {
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
    },
    request.timeoutMs,
  );
  if (response.status >= 200 && response.status < 300) return response;
  throw gatewayFailure(vendor, response, errorText(messageOf(response.body), response.status));
}

/** A gateway's listed items (full sync), each checked against `schema`: an answer that is not a list, or an unreadable item, is a bad answer. */
export function parsedList<T extends z.ZodType>(vendor: string, body: unknown, schema: T, what: string): z.infer<T>[] {
  if (!Array.isArray(body))
    throw new ProviderError('unknown', 'BAD_RESPONSE', `${vendor} answered ${what} that are not a list`);
  return body.map((item, i) => {
    const parsed = schema.safeParse(item);
    if (!parsed.success)
      throw new ProviderError('unknown', 'BAD_RESPONSE', `${vendor} ${what}[${i}]: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  });
}
