/**
 * A consumer in its own process, for tests of crashes and SIGTERM: it prints one JSON line per event
 * (`ready`, `handled`, `stopped`) on stdout. Behaviour from the environment:
 *   TEST_DURABLE, TEST_FILTER   the consumer
 *   TEST_MODE                   `crash` (exit inside the handler) or `slow` (TEST_DELAY_MS per message)
 *   TEST_MAX_ATTEMPTS, TEST_ACK_WAIT_MS, TEST_STOP_TIMEOUT_MS
 */
import { Bus } from '../bus.js';
import { ConsumerRunner, Outcomes } from '../runner.js';

const env = process.env;
const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

const bus = await Bus.connect({ servers: env.NATS_URL!, name: 'consumer-process' });
const runner = new ConsumerRunner({
  bus,
  consumer: { durable: env.TEST_DURABLE!, stream: 'EVENTS', filterSubjects: [env.TEST_FILTER!] },
  maxAttempts: Number(env.TEST_MAX_ATTEMPTS ?? 5),
  ackWaitMs: Number(env.TEST_ACK_WAIT_MS ?? 30_000),
  backoffMs: [50],
  batchSize: Number(env.TEST_BATCH ?? 10),
  handle: async (deliveries) => {
    const outcomes = [];
    for (const d of deliveries) {
      if (env.TEST_MODE === 'crash') process.exit(3);
      await new Promise((resolve) => setTimeout(resolve, Number(env.TEST_DELAY_MS ?? 0)));
      out({ event: 'handled', position: d.position, deliveryCount: d.deliveryCount });
      outcomes.push(Outcomes.ack);
    }
    return outcomes;
  },
});
await runner.start();
process.once('SIGTERM', () => {
  const started = Date.now();
  void runner.stop(Number(env.TEST_STOP_TIMEOUT_MS ?? 5_000)).then(async () => {
    await bus.close();
    out({ event: 'stopped', ms: Date.now() - started, acked: runner.stats.acked });
    process.exit(0);
  });
});
out({ event: 'ready' });
