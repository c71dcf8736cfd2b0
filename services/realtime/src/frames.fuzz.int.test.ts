import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientMessage, ServerMessage } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime, TestSocket } from './testing.js';

/**
 * The WebSocket frame parser: in process at volume (`ClientMessage`, what every frame goes through after
 * JSON.parse), and over a real connection, where any frame a client sends gets well-formed answers and
 * never closes the connection or fails inside the server.
 */
const IN_PROCESS = Number(process.env.FUZZ_WS_CASES ?? 20_000);
const OVER_SOCKET = Number(process.env.FUZZ_WS_FRAMES ?? 5_000);

const validFrames = [
  { op: 'ping' },
  { op: 'subscribe', channel: 'kissflow.DS_Fuzz' },
  { op: 'subscribe', channel: 'kissflow.DS_Fuzz', since: { epoch: '1', position: 3 } },
  { op: 'unsubscribe', channel: 'kissflow.DS_Fuzz' },
  { op: 'more', channel: 'kissflow.DS_Fuzz', cursor: 'abc' },
  { op: 'auth', token: 'x.y.z' },
];

/** A frame: a valid one with one value replaced, any JSON value, or any text. */
const frames = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...validFrames),
      fc.constantFrom('op', 'channel', 'since', 'cursor', 'token', 'position', 'epoch'),
      fc.jsonValue({ maxDepth: 3 }),
    )
    .map(([frame, key, value]) => {
      const copy = structuredClone(frame) as Record<string, unknown>;
      if (key === 'position' || key === 'epoch') copy.since = { ...((copy.since as object) ?? {}), [key]: value };
      else copy[key] = value;
      return JSON.stringify(copy);
    }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 300 }),
);

describe('realtime frames - property-based', () => {
  test(`${IN_PROCESS.toLocaleString('en')} generated frames: the parser accepts only well-formed requests and never throws`, () => {
    fc.assert(
      fc.property(frames, (text) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return;
        }
        const result = ClientMessage.safeParse(parsed);
        if (!result.success) return;
        const frame = result.data;
        if (frame.op === 'subscribe' || frame.op === 'unsubscribe' || frame.op === 'more')
          assert.ok(typeof frame.channel === 'string' && frame.channel.length > 0);
        if (frame.op === 'subscribe' && frame.since)
          assert.ok(Number.isInteger(frame.since.position) && frame.since.position >= 0);
      }),
      { numRuns: IN_PROCESS },
    );
  });

  let bus: Bus;
  let database: Awaited<ReturnType<typeof testDatabase>>;
  let realtime: Awaited<ReturnType<typeof startTestRealtime>>;
  before(async () => {
    bus = await connectTestBus();
    database = await testDatabase();
    realtime = await startTestRealtime(bus, database.db);
  });
  after(async () => {
    await realtime.close();
    await database.drop();
    await bus.close();
  });

  test(`${OVER_SOCKET.toLocaleString('en')} generated frames over one connection: every answer is a valid server frame, none is an internal error, the connection stays open`, async () => {
    const socket = await TestSocket.open(`${realtime.wsUrl}?token=${realtime.token(['kissflow.>'])}`);
    try {
      const sent = fc.sample(frames, {
        numRuns: OVER_SOCKET,
        seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31),
      });
      for (const [i, text] of sent.entries()) {
        socket.send(text);
        // Keep the server's send buffer small: a pause now and then lets the answers drain.
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      socket.send({ op: 'ping' });
      const pongs =
        sent.filter((t) => {
          try {
            return ClientMessage.safeParse(JSON.parse(t)).data?.op === 'ping';
          } catch {
            return false;
          }
        }).length + 1;
      const deadline = Date.now() + 30_000;
      while (socket.frames.filter((f) => f.op === 'pong').length < pongs) {
        assert.ok(
          Date.now() < deadline,
          `${pongs} pongs expected, ${socket.frames.filter((f) => f.op === 'pong').length} received`,
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const frame of socket.frames) {
        assert.ok(
          ServerMessage.safeParse(frame).success,
          `a valid server frame: ${JSON.stringify(frame).slice(0, 300)}`,
        );
        assert.notEqual((frame as { code?: string }).code, 'internal', JSON.stringify(frame));
      }
      const closed = await Promise.race([
        socket.closed,
        new Promise((resolve) => setTimeout(() => resolve('open'), 100)),
      ]);
      assert.equal(closed, 'open', 'the connection stays open');
    } finally {
      socket.close();
    }
  });
});
