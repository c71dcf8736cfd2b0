import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Outcomes, type Bus, type Delivery } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { ProjectionStore } from '@puente/projection';
import { testDatabase } from '@puente/projection/testing';
import { changeMessage } from '@puente/cdc';
import { BitrixClient } from '../bitrix/client.js';
import { FakeBitrix24 } from '../testing/index.js';
import { linksProjection } from './links.js';
import { CompanyMapping } from './mapping.js';
import { CompanyPusher } from './pusher.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let bus: Bus;
let fake: FakeBitrix24;
let mongo: Awaited<ReturnType<typeof testDatabase>>;

before(async () => {
  bus = await connectTestBus();
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
  mongo = await testDatabase();
});
after(async () => {
  await fake.stop();
  await mongo.drop();
  await bus.close();
});

/** A customer table of the test's own: its mapping, a `bitrix_links` store and a client of the fake. */
async function customers() {
  const table = uniqueName('cliente').toLowerCase();
  const originatorId = `t_${table}`;
  const mapping = CompanyMapping.parse({ table: `public.${table}`, originatorId });
  const links = new ProjectionStore({ db: mongo.db, bus, writers: 'exclusive', projection: linksProjection() });
  await links.init();
  const client = new BitrixClient({
    auth: { kind: 'webhook', url: fake.webhookUrl() },
    bucket: { burst: 50, drainPerSecond: 20 },
    logger,
  });
  return { table, originatorId, mapping, links, client };
}

/** The delivery of customer `id`'s change to `version` at stream `position`, as the runner hands it over. */
function change(
  table: string,
  id: number,
  version: number,
  position: number,
  deliveryCount: number,
  columns: Record<string, unknown> = {},
): Delivery {
  const lsn = `0/${position.toString(16)}`;
  const { event } = changeMessage(
    'logical',
    {
      schema: 'public',
      table,
      op: 'updated',
      key: { id_cliente: id },
      row: {
        id_cliente: id,
        razon_social: `Empresa Ficticia v${version}`,
        telefono: `+51 1 555 000${version}`,
        ...columns,
      },
      position: lsn,
    },
    lsn,
  );
  const data = new TextEncoder().encode(JSON.stringify(event));
  return {
    subject: `evt.glyms.${table}.updated`,
    data,
    headers: undefined,
    stream: 'EVENTS',
    position,
    deliveryCount,
    redrive: false,
    json: <T>() => JSON.parse(new TextDecoder().decode(data)) as T,
  };
}

test('a change retried after a newer one (a redelivery, behind it in the batch) never overwrites the newer state in Bitrix24', async () => {
  const { table, originatorId, mapping, links, client } = await customers();
  const pusher = new CompanyPusher({ api: client, bus, links, mapping, logger });
  const title = () => [...fake.companies.values()].find((c) => c.ORIGINATOR_ID === originatorId)?.TITLE;

  assert.deepEqual(await pusher.handle([change(table, 7, 1, 100, 1)]), [Outcomes.ack]);
  assert.equal(title(), 'Empresa Ficticia v1');
  // v3 (position 300) is new; v2 (position 200) failed earlier and comes back after its backoff, behind v3.
  const outcomes = await pusher.handle([change(table, 7, 3, 300, 1), change(table, 7, 2, 200, 2)]);
  assert.deepEqual(outcomes, [Outcomes.ack, Outcomes.ack]);
  assert.equal(title(), 'Empresa Ficticia v3', 'the newest change by stream position wins');
  // And alone, later, the old change writes nothing.
  await pusher.handle([change(table, 7, 2, 200, 3)]);
  assert.equal(title(), 'Empresa Ficticia v3');
});

test('when the push fails, the newest change by position carries the retry; older ones in the batch are superseded', async () => {
  const { table, originatorId, mapping, links, client } = await customers();
  const failing = new CompanyPusher({
    api: {
      batch: async (commands) => ({
        result: {},
        errors: Object.fromEntries(
          Object.keys(commands).map((k) => [k, { error: 'INTERNAL_SERVER_ERROR', error_description: 'injected' }]),
        ),
      }),
    },
    bus,
    links,
    mapping,
    logger,
  });
  const outcomes = await failing.handle([change(table, 9, 3, 300, 1), change(table, 9, 2, 200, 2)]);
  assert.equal(outcomes[0]!.kind, 'retry', 'the newest change is retried');
  assert.equal(outcomes[1]!.kind, 'ack', 'the older one is superseded');
  // The retried newest change then lands.
  const pusher = new CompanyPusher({ api: client, bus, links, mapping, logger });
  await pusher.handle([change(table, 9, 3, 300, 2)]);
  assert.equal(
    [...fake.companies.values()].find((c) => c.ORIGINATOR_ID === originatorId)?.TITLE,
    'Empresa Ficticia v3',
  );
});

test('a company whose read-back failed after its add is read before the next update: its e-mail is replaced, never added twice', async () => {
  const { table, originatorId, mapping, links, client } = await customers();
  const pusher = new CompanyPusher({ api: client, bus, links, mapping, logger });
  const company = () => [...fake.companies.values()].find((c) => c.ORIGINATOR_ID === originatorId);
  const values = (field: string) => ((company()?.[field] as { VALUE: string }[] | undefined) ?? []).map((e) => e.VALUE);

  // The add lands; the crm.company.get after it in the same batch fails.
  fake.inject({ status: 500, error: 'INTERNAL_SERVER_ERROR', subCall: true, method: 'crm.company.get' });
  const first = await pusher.handle([change(table, 11, 1, 100, 1, { email: 'antes@empresa.example' })]);
  assert.equal(first[0]!.kind, 'retry');
  assert.deepEqual(values('EMAIL'), ['antes@empresa.example']);
  // The next change (a new address) replaces the entry instead of adding a second one.
  assert.deepEqual(await pusher.handle([change(table, 11, 2, 200, 1, { email: 'despues@empresa.example' })]), [
    Outcomes.ack,
  ]);
  assert.deepEqual(values('EMAIL'), ['despues@empresa.example']);
  assert.deepEqual(values('PHONE'), ['+51 1 555 0002']);
  // A process that restarts (no memory) and gets the same change again keeps one entry each.
  const restarted = new CompanyPusher({ api: client, bus, links, mapping, logger });
  await restarted.handle([change(table, 11, 2, 200, 2, { email: 'despues@empresa.example' })]);
  assert.deepEqual(values('EMAIL'), ['despues@empresa.example']);
  assert.deepEqual(values('PHONE'), ['+51 1 555 0002']);
});
