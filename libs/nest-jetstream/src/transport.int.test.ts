import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, Inject, Injectable, Module } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { createEvent, encodeToken, type DomainEvent } from '@puente/contracts';
import { listDeadLetters, Outcomes, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import {
  createJetStreamMicroservice,
  JetStreamContext,
  JetStreamTransport,
  OnJetStream,
  startJetStreamService,
} from './transport.js';

let bus: Bus;
before(async () => {
  bus = await connectTestBus();
});
after(async () => {
  await bus.close();
});

const dataset = uniqueName('ds');
const durable = uniqueName('nest-');

@Injectable()
class Sink {
  readonly rows: { rowId: string; position: number }[] = [];
}

@Controller()
class RowsController {
  // Constructor injection only works when decorator metadata survived compilation.
  constructor(private readonly sink: Sink) {}

  @OnJetStream(
    { durable, stream: 'EVENTS', filterSubjects: [`evt.kissflow.record.upserted.${encodeToken(dataset)}`] },
    { runner: { maxAttempts: 2, backoffMs: [20] } },
  )
  async onRow(@Payload() event: DomainEvent, @Ctx() context: JetStreamContext): Promise<void> {
    if (event.type !== 'kissflow.record.upserted.v1') return;
    if (event.data.rowId === 'explodes') throw new Error('handler failed on purpose');
    this.sink.rows.push({ rowId: event.data.rowId, position: context.delivery.position });
  }

  @EventPattern<Record<string, Delivery>>(`evt.test.${dataset}.raw`, { raw: true })
  onRaw(@Payload() delivery: Delivery): void {
    void delivery;
  }
}

@Module({ controllers: [RowsController], providers: [Sink] })
class ProbeModule {}

test('nest transport - @EventPattern handlers consume JetStream; a throwing handler is retried, then dead-lettered, not swallowed', async () => {
  const transport = new JetStreamTransport({ bus, service: 'probe' });
  const app = await createJetStreamMicroservice(ProbeModule, transport, { logger: false });
  await app.listen();
  try {
    const row = (rowId: string) =>
      createEvent(
        'kissflow.record.upserted.v1',
        { dataset, rowId, fields: { Name: rowId }, modifiedAt: '2025-10-15T10:30:00Z', origin: 'webhook' },
        { source: 'test' },
      );
    const first = await bus.publishEvent(row('r1'));
    await bus.publishEvent(row('explodes'));
    await bus.publishEvent(row('r2'));
    const sink = app.get(Sink);
    await eventually(() => (sink.rows.length === 2 ? true : undefined), 10_000, 'two rows');
    assert.deepEqual(
      sink.rows.map((r) => r.rowId),
      ['r1', 'r2'],
    );
    assert.equal(sink.rows[0]!.position, first.seq);
    const [letter] = await eventually(
      async () => {
        const letters = await listDeadLetters(bus, { consumer: durable });
        return letters.length ? letters : undefined;
      },
      10_000,
      'the dead letter',
    );
    assert.match(letter!.error, /handler failed on purpose/);
    assert.equal(letter!.deliveries, 2);
    const stats = transport.stats.find((s) => s.consumer === durable)!;
    assert.equal(stats.acked, 2);
    assert.equal(stats.deadLettered, 1);
    assert.ok(
      transport.stats.some((s) => s.consumer.startsWith('probe-evt_test_')),
      'a bare pattern gets a derived durable name',
    );
  } finally {
    await app.close();
  }
});

const SEEN = Symbol('seen');

/** A top-level controller whose consumer and dependency both come from the composition root. */
@Controller()
class BoundRowsController {
  constructor(@Inject(SEEN) private readonly seen: string[]) {}

  @OnJetStream('rows', { batch: true })
  onRows(deliveries: Delivery[]): Outcome[] {
    return deliveries.map((delivery) => {
      this.seen.push(delivery.subject);
      return Outcomes.ack;
    });
  }
}

@Module({})
class BoundModule {}

test('nest transport - a handler declared by name runs on the consumer bound at start, with the runner options bound with it', async () => {
  const boundDataset = uniqueName('ds');
  const consumer = {
    durable: uniqueName('nest-bound-'),
    stream: 'EVENTS' as const,
    filterSubjects: [`evt.kissflow.record.upserted.${encodeToken(boundDataset)}`],
  };
  const seen: string[] = [];
  const module = {
    module: BoundModule,
    controllers: [BoundRowsController],
    providers: [{ provide: SEEN, useValue: seen }],
  };
  await assert.rejects(startJetStreamService(module, { bus, service: 'probe' }), /no consumer bound to 'rows'/);
  const { stop, transport } = await startJetStreamService(module, {
    bus,
    service: 'probe',
    consumers: { rows: { consumer, runner: { batchSize: 7 } } },
  });
  try {
    await bus.publishEvent(
      createEvent(
        'kissflow.record.upserted.v1',
        { dataset: boundDataset, rowId: 'b1', fields: {}, modifiedAt: '2025-10-15T10:30:00Z', origin: 'webhook' },
        { source: 'test' },
      ),
    );
    await eventually(() => (seen.length === 1 ? true : undefined), 10_000, 'the bound row');
    assert.deepEqual(seen, [`evt.kissflow.record.upserted.${encodeToken(boundDataset)}`]);
    assert.deepEqual(
      transport.stats.map((s) => s.consumer),
      [consumer.durable],
    );
  } finally {
    await stop();
  }
});
