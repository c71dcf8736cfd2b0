import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import { trace } from '@opentelemetry/api';

export type { Logger };

/**
 * Paths pino removes from every log line: credentials in headers, configuration and errors. Values are
 * censored, keys kept, so a reader sees that a secret was there without seeing it.
 */
export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.apikey',
  'headers["x-api-key"]',
  'headers.apikey',
  '*.apikey',
  'password',
  '*.password',
  '*.*.password',
  'secret',
  '*.secret',
  '*.*.secret',
  'token',
  '*.token',
  '*.*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'client_secret',
  '*.client_secret',
  'config.*SECRET*',
  'env',
];

/** A pino JSON logger whose every line carries the active trace and span ids. */
export function createLogger(options: { service: string; level: string; destination?: DestinationStream }): Logger {
  const config: LoggerOptions = {
    level: options.level,
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const span = trace.getActiveSpan()?.spanContext();
      return span && span.traceId !== '00000000000000000000000000000000'
        ? { trace_id: span.traceId, span_id: span.spanId }
        : {};
    },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
