import { context, propagation, trace, type Context, type Link, type Span, SpanKind } from '@opentelemetry/api';
import type { MsgHdrs } from 'nats';

const setter = { set: (carrier: MsgHdrs, key: string, value: string) => carrier.set(key, value) };
const getter = {
  get: (carrier: MsgHdrs | undefined, key: string) => carrier?.get(key) || undefined,
  keys: (carrier: MsgHdrs | undefined) => (carrier ? carrier.keys() : []),
};

export const tracer = trace.getTracer('@puente/bus');

/** Writes the active trace context (W3C `traceparent`) into message headers. */
export function injectTrace(headers: MsgHdrs, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/** The trace context a message carries, for a span that continues it. */
export function extractTrace(headers: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), headers, getter);
}

/** Links to the producers of a batch: one processing span per batch, linked to every message's trace. */
export function linksOf(headers: (MsgHdrs | undefined)[]): Link[] {
  const links: Link[] = [];
  for (const h of headers) {
    const spanContext = trace.getSpanContext(extractTrace(h));
    if (spanContext) links.push({ context: spanContext });
  }
  return links;
}

/** Runs `fn` in a span; a single message continues its producer's trace as the span's parent. */
export async function withSpan<T>(
  name: string,
  options: { kind: SpanKind; parent?: Context; links?: Link[]; attributes?: Record<string, string | number> },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const span = tracer.startSpan(
    name,
    { kind: options.kind, links: options.links, attributes: options.attributes },
    options.parent ?? context.active(),
  );
  try {
    return await context.with(trace.setSpan(options.parent ?? context.active(), span), () => fn(span));
  } catch (error) {
    span.recordException(error as Error);
    throw error;
  } finally {
    span.end();
  }
}

export { SpanKind };
