import type { Db } from 'mongodb';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { Bus } from '@puente/bus';
import { listen, signToken } from '@puente/runtime';
import { build, type RealtimeOptions, type RealtimeServer } from './app.js';
import { Config } from './config.js';

export const TEST_REALTIME_SECRET = 'test-realtime-secret-not-real';

/** A realtime server on a free loopback port, for tests; `token()` mints tokens it accepts; `extra` sets the media stores. */
export async function startTestRealtime(
  bus: Bus,
  db: Db,
  overrides: Record<string, string> = {},
  readModels?: RealtimeOptions['readModels'],
  extra: Pick<RealtimeOptions, 'media' | 'uploads'> = {},
): Promise<{
  url: string;
  wsUrl: string;
  server: RealtimeServer;
  token: (channels: string[], ttlSeconds?: number) => string;
  close: () => Promise<void>;
}> {
  const config = Config.parse(overrides);
  const server = build({
    bus,
    db,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    checks: {},
    secrets: [TEST_REALTIME_SECRET],
    config,
    ...(readModels ? { readModels } : {}),
    ...extra,
  });
  await server.start();
  const http = await listen(server.http, 0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${http.port}`,
    wsUrl: `ws://127.0.0.1:${http.port}/ws`,
    server,
    token: (channels, ttlSeconds = 3600) => signToken({ sub: 'test', channels }, TEST_REALTIME_SECRET, ttlSeconds),
    close: async () => {
      await server.stop();
      await http.close();
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Frame = Record<string, any>;

/** A raw protocol client for tests: every frame kept, waits by predicate, the close code. */
export class TestSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { predicate: (frame: Frame) => boolean; resolve: (frame: Frame) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.predicate(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async open(url: string): Promise<TestSocket> {
    const ws = new WebSocket(url);
    const socket = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return socket;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or to come) that matches. */
  next(predicate: (frame: Frame) => boolean, timeoutMs = 10_000, what = 'a frame'): Promise<Frame> {
    const found = this.frames.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.frames).slice(0, 500)}`)),
        timeoutMs,
      );
      this.waiters.push({ predicate, resolve: (frame) => (clearTimeout(timer), resolve(frame)) });
    });
  }

  close(): void {
    this.ws.close();
  }
}
