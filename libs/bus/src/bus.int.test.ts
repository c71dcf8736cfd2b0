import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Headers, StreamNames } from '@puente/contracts';
import { isNotFound, jetStreamApiError, JetStreamApiErrors, type Bus } from './bus.js';
import { ConsumerRunner, Outcomes, perMessage, redriveConsumerName, type Delivery } from './runner.js';
import { listDeadLetters, redriveDeadLetter } from './deadletters.js';
import { BusUnavailableError } from './errors.js';
import { connectTestBus, eventually, uniqueName } from './testing/index.js';

let bus: Bus;
before(async () => {
  bus = await connectTestBus();
});
after(async () => {
  await bus.close();
});

/** A consumer on a private subject namespace of the shared EVENTS stream. */
function scope() {
  const ns = uniqueName('b');
  return {
    ns,
    subject: (leaf = 'x') => `evt.test.${ns}.${leaf}`,
    filter: `evt.test.${ns}.>`,
    durable: uniqueName('c-'),
  };
}

function startRunner(
  options: Partial<ConstructorParameters<typeof ConsumerRunner>[0]> &
    Pick<ConstructorParameters<typeof ConsumerRunner>[0], 'handle'>,
  s: ReturnType<typeof scope>,
  durable = s.durable,
) {
  const runner = new ConsumerRunner({
    bus,
    consumer: { durable, stream: 'EVENTS', filterSubjects: [s.filter] },
    backoffMs: [20],
    ackWaitMs: 2_000,
    ...options,
  });
  return runner.start().then(() => runner);
}

describe('bus - publish', () => {
  test('publishing the same Nats-Msg-Id twice stores one message and reports the second as a duplicate', async () => {
    const s = scope();
    const first = await bus.publish(s.subject(), { n: 1 }, { msgId: `${s.ns}-same` });
    const second = await bus.publish(s.subject(), { n: 1 }, { msgId: `${s.ns}-same` });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    const info = await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: s.filter });
    assert.equal(info.state.subjects?.[s.subject()], 1);
  });

  test('concurrent publishes each get their own ack: the sequence each one reports holds its own payload', async () => {
    const s = scope();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => bus.publish(s.subject(String(i % 7)), { i }, { msgId: `${s.ns}-${i}` })),
    );
    assert.equal(new Set(results.map((r) => r.seq)).size, 300);
    for (const i of [0, 1, 150, 299]) {
      const stored = await bus.direct.getMessage(StreamNames.EVENTS, { seq: results[i]!.seq });
      assert.deepEqual(stored.json(), { i });
      assert.equal(stored.subject, s.subject(String(i % 7)));
    }
  });

  test('no stream on the subject, the wrong expected stream, or no ack in time: BusUnavailableError, and the bus keeps working', async () => {
    const s = scope();
    await assert.rejects(
      bus.publish(`nostream.${s.ns}`, { n: 1 }),
      (error: Error) => error instanceof BusUnavailableError && /no responders/.test(error.message),
    );
    await assert.rejects(
      bus.publish(s.subject(), { n: 1 }, { expectStream: 'COMMANDS' }),
      (error: Error) => error instanceof BusUnavailableError && /expected stream/i.test(error.message),
    );
    const silent = bus.nc.subscribe(`silent.${s.ns}`); // hears the publish, never answers
    const started = Date.now();
    await assert.rejects(
      bus.publish(`silent.${s.ns}`, { n: 1 }, { timeoutMs: 300 }),
      (error: Error) => error instanceof BusUnavailableError && /timed out/.test(error.message),
    );
    assert.ok(Date.now() - started < 2_000, 'the timeout is honoured');
    silent.unsubscribe();
    assert.equal((await bus.publish(s.subject(), { n: 2 }, { expectStream: StreamNames.EVENTS })).duplicate, false);
  });

  test('a pipelined publisher keeps a bounded window and reports every result', async () => {
    const s = scope();
    const pipeline = bus.pipeline(8);
    const acks = [];
    let unsettled = 0;
    let maxInFlight = 0;
    for (let i = 0; i < 100; i++) {
      const { ack } = await pipeline.publish(s.subject(), { i }, { msgId: `${s.ns}-${i % 50}` });
      unsettled++;
      void ack.then(() => unsettled--);
      acks.push(ack);
      maxInFlight = Math.max(maxInFlight, unsettled);
    }
    await pipeline.flush();
    const settled = await Promise.all(acks);
    assert.equal(settled.filter((r) => r.duplicate).length, 50);
    assert.ok(maxInFlight > 1, `publishes overlap (max in flight ${maxInFlight})`);
    assert.ok(maxInFlight <= 8, `never more than the window in flight (max ${maxInFlight})`);
  });

  test('stream setup is idempotent and applies a changed limit', async () => {
    await bus.ensureStreams();
    await bus.ensureStreams(undefined, { WEBHOOKS_RAW: { maxAgeMs: 3 * 24 * 3600_000 } });
    assert.equal((await bus.jsm.streams.info(StreamNames.WEBHOOKS_RAW)).config.max_age, 3 * 24 * 3600_000 * 1e6);
    await bus.ensureStreams();
    assert.equal((await bus.jsm.streams.info(StreamNames.WEBHOOKS_RAW)).config.max_age, 7 * 24 * 3600_000 * 1e6);
  });
});

describe('bus - consumer runner', () => {
  test('consumer setup is idempotent and applies a changed configuration', async () => {
    const s = scope();
    const first = await startRunner({ maxAttempts: 3, handle: perMessage(async () => undefined) }, s);
    await first.stop();
    // The runner bounds attempts itself; the server never stops redelivering (see the DLQ-down test).
    assert.equal((await bus.jsm.consumers.info('EVENTS', s.durable)).config.max_deliver, -1);
    // A consumer an older version created with a server-side cap is updated.
    await bus.jsm.consumers.update('EVENTS', s.durable, { max_deliver: 4 });
    const again = await startRunner({ maxAttempts: 3, handle: perMessage(async () => undefined) }, s);
    await again.stop();
    assert.equal((await bus.jsm.consumers.info('EVENTS', s.durable)).config.max_deliver, -1);
    const changed = await startRunner(
      { maxAttempts: 7, ackWaitMs: 5_000, handle: perMessage(async () => undefined) },
      s,
    );
    await changed.stop();
    const info = await bus.jsm.consumers.info('EVENTS', s.durable);
    assert.equal(info.config.ack_wait, 5_000 * 1e6);
  });

  test('a handler that keeps failing lands in the DLQ with its original subject and sequence after max attempts', async () => {
    const s = scope();
    let attempts = 0;
    const runner = await startRunner(
      {
        maxAttempts: 3,
        handle: perMessage(async () => {
          attempts++;
          throw new Error('projection unavailable');
        }),
      },
      s,
    );
    const published = await bus.publish(s.subject('poison'), { hello: 'world' }, { msgId: `${s.ns}-p` });
    const [letter] = await eventually(
      async () => {
        const letters = await listDeadLetters(bus, { consumer: s.durable });
        return letters.length ? letters : undefined;
      },
      15_000,
      'a dead letter',
    );
    await runner.stop();
    assert.equal(attempts, 3);
    assert.equal(letter!.originalSubject, s.subject('poison'));
    assert.equal(letter!.originalSequence, published.seq);
    assert.equal(letter!.originalStream, 'EVENTS');
    assert.equal(letter!.consumer, s.durable);
    assert.match(letter!.error, /projection unavailable/);
    assert.equal(runner.stats.deadLettered, 1);
  });

  test('a dead letter the DLQ cannot take at the last attempt is redelivered until it can: nothing is dropped', async () => {
    const s = scope();
    // The bus as the runner sees it while the DLQ is away: publishes to `dlq.>` fail as a missing stream does.
    let dlqDown = true;
    let refused = 0;
    const flaky = new Proxy(bus, {
      get(target, property, receiver) {
        if (property === 'publish')
          return (subject: string, ...rest: unknown[]) => {
            if (dlqDown && subject.startsWith('dlq.')) {
              refused++;
              return Promise.reject(new BusUnavailableError(`no stream answered for ${subject} (DLQ down)`));
            }
            return (target.publish as (...args: unknown[]) => Promise<unknown>).call(target, subject, ...rest);
          };
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    let attempts = 0;
    const runner = await startRunner(
      {
        bus: flaky,
        maxAttempts: 2,
        handle: perMessage(async () => {
          attempts++;
          throw new Error('projection unavailable');
        }),
      },
      s,
    );
    const published = await bus.publish(s.subject('poison'), { hello: 'world' }, { msgId: `${s.ns}-p` });
    // Well past the attempts a server-side cap (maxAttempts + 1 deliveries) would allow.
    await eventually(async () => (refused >= 4 ? true : undefined), 15_000, 'repeated dead-letter attempts');
    dlqDown = false;
    const [letter] = await eventually(
      async () => {
        const letters = await listDeadLetters(bus, { consumer: s.durable });
        return letters.length ? letters : undefined;
      },
      15_000,
      'the dead letter once the DLQ is back',
    );
    await runner.stop();
    assert.equal(attempts, 2, 'the handler ran maxAttempts times, never after');
    assert.equal(letter!.originalSequence, published.seq);
    assert.equal(runner.stats.deadLettered, 1);
  });

  test('a permanent error goes to the DLQ at once, without retries', async () => {
    const s = scope();
    let attempts = 0;
    const runner = await startRunner(
      {
        handle: async (ds) =>
          ds.map(() => {
            attempts++;
            return Outcomes.dead(new Error('contract violation'));
          }),
      },
      s,
    );
    await bus.publish(s.subject(), { bad: true });
    await eventually(
      async () => ((await listDeadLetters(bus, { consumer: s.durable })).length === 1 ? true : undefined),
      10_000,
    );
    await runner.stop();
    assert.equal(attempts, 1);
  });

  test('a redrive reaches only the consumer that gave up, keeps the original position, and is not dropped as a duplicate', async () => {
    const s = scope();
    const failing = uniqueName('fail-');
    const healthy = uniqueName('ok-');
    let fixed = false;
    const seenByFailing: Delivery[] = [];
    const seenByHealthy: Delivery[] = [];
    const a = await startRunner(
      {
        maxAttempts: 2,
        handle: perMessage(async (d) => {
          if (!fixed) throw new Error('bug');
          seenByFailing.push(d);
        }),
      },
      s,
      failing,
    );
    const b = await startRunner(
      {
        handle: perMessage(async (d) => {
          seenByHealthy.push(d);
        }),
      },
      s,
      healthy,
    );
    const published = await bus.publish(s.subject('order'), { id: 7 }, { msgId: `${s.ns}-7` });
    const [letter] = await eventually(
      async () => {
        const letters = await listDeadLetters(bus, { consumer: failing });
        return letters.length ? letters : undefined;
      },
      15_000,
      'a dead letter',
    );
    assert.equal(seenByHealthy.length, 1);
    fixed = true;
    await redriveDeadLetter(bus, letter!.id);
    await eventually(() => (seenByFailing.length === 1 ? true : undefined), 10_000, 'the redrive');
    assert.deepEqual(await listDeadLetters(bus, { consumer: failing }), [], 'the redriven dead letter left the DLQ');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await a.stop();
    await b.stop();
    assert.equal(seenByHealthy.length, 1, 'the healthy consumer did not see the redrive');
    assert.equal(seenByFailing[0]!.redrive, true);
    assert.equal(seenByFailing[0]!.subject, s.subject('order'));
    assert.equal(seenByFailing[0]!.position, published.seq);
    assert.deepEqual(seenByFailing[0]!.json(), { id: 7 });
    assert.equal((await bus.jsm.consumers.info(StreamNames.DLQ, redriveConsumerName(failing))).num_ack_pending, 0);
  });
});

const consumerProcess = fileURLToPath(new URL('./testing/consumer-process.js', import.meta.url));

function startConsumerProcess(env: Record<string, string>): {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  waitFor: (event: string) => Promise<Record<string, unknown>>;
} {
  const child = spawn(process.execPath, [consumerProcess], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    for (const w of waiters.filter((x) => x.event === line.event)) w.resolve(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (event: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const found = lines.find((l) => l.event === event);
      if (found) resolve(found);
      else waiters.push({ event, resolve });
    });
  return { child, lines, exited, waitFor };
}

describe('bus - crashes and shutdown', () => {
  test('a handler that crashes the process before acking sees the message again', async () => {
    const s = scope();
    const crasher = startConsumerProcess({
      TEST_DURABLE: s.durable,
      TEST_FILTER: s.filter,
      TEST_MODE: 'crash',
      TEST_ACK_WAIT_MS: '1000',
    });
    await crasher.waitFor('ready');
    const published = await bus.publish(s.subject(), { crash: true });
    assert.equal(await crasher.exited, 3);
    const seen: Delivery[] = [];
    const runner = await startRunner(
      {
        ackWaitMs: 1_000,
        handle: perMessage(async (d) => {
          seen.push(d);
        }),
      },
      s,
    );
    await eventually(() => (seen.length ? true : undefined), 10_000, 'the redelivery');
    await runner.stop();
    assert.equal(seen[0]!.position, published.seq);
    assert.equal(seen[0]!.deliveryCount, 2);
  });

  test('a message that crashes the process on every delivery ends in the DLQ instead of looping', async () => {
    const s = scope();
    await bus.publish(s.subject('killer'), { crash: true });
    for (let i = 0; i < 2; i++) {
      const crasher = startConsumerProcess({
        TEST_DURABLE: s.durable,
        TEST_FILTER: s.filter,
        TEST_MODE: 'crash',
        TEST_ACK_WAIT_MS: '1000',
        TEST_MAX_ATTEMPTS: '2',
      });
      assert.equal(await crasher.exited, 3);
    }
    const handled: Delivery[] = [];
    const runner = await startRunner(
      {
        maxAttempts: 2,
        ackWaitMs: 1_000,
        handle: perMessage(async (d) => {
          handled.push(d);
        }),
      },
      s,
    );
    const [letter] = await eventually(
      async () => {
        const letters = await listDeadLetters(bus, { consumer: s.durable });
        return letters.length ? letters : undefined;
      },
      15_000,
      'a dead letter',
    );
    await runner.stop();
    assert.equal(handled.length, 0, 'the poisoned message was not handed to the handler again');
    assert.ok(['NO_OUTCOME', 'MAX_DELIVERIES'].includes(letter!.errorCode), letter!.errorCode);
    assert.equal(letter!.originalSubject, s.subject('killer'));
  });

  test('a consumer drains and stops within its bound on SIGTERM without losing an acked or unacked message', async () => {
    const s = scope();
    const total = 60;
    for (let i = 0; i < total; i++) await bus.publish(s.subject(), { i }, { msgId: `${s.ns}-${i}` });
    const worker = startConsumerProcess({
      TEST_DURABLE: s.durable,
      TEST_FILTER: s.filter,
      TEST_MODE: 'slow',
      TEST_DELAY_MS: '40',
      TEST_BATCH: '10',
      TEST_STOP_TIMEOUT_MS: '3000',
    });
    await worker.waitFor('handled');
    const sentAt = Date.now();
    worker.child.kill('SIGTERM');
    const stopped = await worker.waitFor('stopped');
    assert.equal(await worker.exited, 0);
    assert.ok(Date.now() - sentAt < 5_000, `stopped within the bound (${Date.now() - sentAt} ms)`);
    const firstPass = new Set(worker.lines.filter((l) => l.event === 'handled').map((l) => l.position as number));
    assert.equal(stopped.acked, firstPass.size);
    assert.ok(firstPass.size < total, 'SIGTERM came before the work was done');
    const rest = new Set<number>();
    const runner = await startRunner(
      {
        handle: perMessage(async (d) => {
          rest.add(d.position);
        }),
      },
      s,
    );
    await eventually(
      async () =>
        (await bus.jsm.consumers.info('EVENTS', s.durable)).num_pending === 0 &&
        (await bus.jsm.consumers.info('EVENTS', s.durable)).num_ack_pending === 0
          ? true
          : undefined,
      10_000,
      'the rest',
    );
    await runner.stop();
    for (const position of firstPass)
      assert.ok(!rest.has(position), `acked message ${position} was not delivered again`);
    assert.equal(firstPass.size + rest.size, total, 'every message was handled');
  });
});

test('bus - dead letters keep the application headers of the original', async () => {
  const s = scope();
  const runner = await startRunner(
    {
      maxAttempts: 1,
      handle: perMessage(async () => {
        throw new Error('nope');
      }),
    },
    s,
  );
  await bus.publish(s.subject(), { x: 1 }, { headers: { [Headers.EventType]: 'test.thing.happened.v1' } });
  const [letter] = await eventually(async () => {
    const letters = await listDeadLetters(bus, { consumer: s.durable });
    return letters.length ? letters : undefined;
  }, 10_000);
  await runner.stop();
  const stored = await bus.jsm.streams.getMessage(StreamNames.DLQ, { seq: letter!.id });
  assert.equal(stored.header.get(Headers.EventType), 'test.thing.happened.v1');
});

describe('bus - JetStream API errors', () => {
  test('a missing stream, consumer or message is "not found" by its API error code; another failure is not', async () => {
    const s = scope();
    const missing = async (call: () => Promise<unknown>) => {
      try {
        await call();
      } catch (error) {
        return error;
      }
      assert.fail('expected the call to fail');
    };
    const noStream = await missing(() => bus.jsm.streams.info(uniqueName('NO_SUCH_STREAM_')));
    assert.equal(jetStreamApiError(noStream), JetStreamApiErrors.StreamNotFound);
    assert.ok(isNotFound(noStream));
    const noConsumer = await missing(() => bus.jsm.consumers.info(StreamNames.EVENTS, uniqueName('no-such-consumer-')));
    assert.equal(jetStreamApiError(noConsumer), JetStreamApiErrors.ConsumerNotFound);
    assert.ok(isNotFound(noConsumer));
    const noMessage = await missing(() =>
      bus.jsm.streams.getMessage(StreamNames.EVENTS, { last_by_subj: s.subject('never') }),
    );
    assert.equal(jetStreamApiError(noMessage), JetStreamApiErrors.NoMessageFound);
    assert.ok(isNotFound(noMessage));
    assert.ok(
      isNotFound(await missing(() => bus.direct.getMessage(StreamNames.EVENTS, { last_by_subj: s.subject('never') }))),
      'a direct get of a missing message',
    );
    const nameInUse = await missing(() =>
      bus.jsm.streams.add({ name: StreamNames.EVENTS, subjects: [`other.${s.ns}.>`] }),
    );
    assert.equal(jetStreamApiError(nameInUse), JetStreamApiErrors.StreamNameInUse);
    assert.equal(isNotFound(nameInUse), false);
    assert.equal(isNotFound(new Error('stream not found')), false, 'a message text alone decides nothing');
  });
});
