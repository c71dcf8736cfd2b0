import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import { Channels, channelFilter, Collections, createEvent, decodeEvent, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp } from '../index.js';
import type { CommandDoc } from '../readModels.js';
import { FakeGraph, type GraphTemplate } from '../testing/index.js';
import type { TemplateDoc } from './templatesProjection.js';

const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let graph: FakeGraph;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  graph = await new FakeGraph().start();
});
after(async () => {
  await graph.stop();
  await database.drop();
  await bus.close();
});

/** A Cloud API session of its own (a phone number id): a workqueue refuses two consumers whose filters overlap. */
const cloudSession = () => String(100_000_000_000_000 + randomInt(1, 2 ** 47));
const template = (i: number, status: GraphTemplate['status'] = 'APPROVED'): GraphTemplate => ({
  id: String(1_667_192_013_751_005 + i),
  name: `plantilla_${String(i).padStart(3, '0')}`,
  language: i % 2 === 0 ? 'es' : 'en_US',
  status,
  category: 'UTILITY',
  components: [
    { type: 'BODY', text: `Hola {{1}}, aviso ${i}.`, example: { body_text: [['Juan']] } },
    { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Gracias' }] },
  ],
});
const templates = (session: string) =>
  db
    .collection<TemplateDoc & { _id: string }>(Collections.waTemplates)
    .find({ session, _deleted: { $ne: true } })
    .sort({ _id: 1 })
    .toArray();

async function start(session: string, wabaId: string) {
  const config = Config.parse({
    WHATSAPP_ACCESS_TOKEN: graph.accessToken,
    WHATSAPP_GRAPH_URL: graph.url,
    WHATSAPP_WABA_IDS: `${session}:${wabaId}`,
    WHATSAPP_SESSIONS: session,
  });
  return startWhatsApp({ bus, db, logger, config });
}

const syncNow = async (session: string) => {
  const commandId = uniqueName('sync-cmd-');
  await bus.publishEvent(
    createEvent(
      'whatsapp.sync_session.v1',
      { commandId, session, sentBy: 'ana', requestedAt: new Date().toISOString() },
      { source: 'urn:test' },
    ) as DomainEvent,
  );
  return eventually(
    async () => {
      const doc = await db.collection<CommandDoc & { _id: string }>(Collections.commands).findOne({ _id: commandId });
      return doc && doc.status !== 'queued' ? doc : undefined;
    },
    20_000,
    'the sync command to end',
  );
};

describe('whatsapp - Cloud API message templates', () => {
  test('on start and on "sync now" every page of the WABA\'s templates lands in wa_templates; changes and removals follow', async () => {
    graph.templates = Array.from({ length: 230 }, (_, i) => template(i, i === 7 ? 'REJECTED' : 'APPROVED'));
    graph.templateListings.length = 0;
    const session = cloudSession();
    const notices: string[] = [];
    const subscription = bus.nc.subscribe(channelFilter(Channels.whatsappTemplates(session)), {
      callback: (_error, msg) => notices.push(msg.subject),
    });
    const running = await start(session, graph.wabaId);
    try {
      const first = await eventually(
        async () => {
          const docs = await templates(session);
          return docs.length === 230 ? docs : undefined;
        },
        30_000,
        'the templates read at start',
      );
      const seventh = first.find((d) => d.name === 'plantilla_007')!;
      assert.deepEqual(
        [seventh.language, seventh.status, seventh.category, seventh.templateId, seventh.wabaId],
        ['en_US', 'REJECTED', 'UTILITY', '1667192013751012', graph.wabaId],
      );
      assert.deepEqual(
        seventh.components,
        [
          { type: 'BODY', text: 'Hola {{1}}, aviso 7.' },
          { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Gracias' }] },
        ],
        'components without the review examples (nested arrays FerretDB cannot store)',
      );
      assert.equal(first.filter((d) => d.status === 'APPROVED').length, 229);
      // Three pages of 100, the later ones by the `after` cursor of the one before.
      assert.deepEqual(
        graph.templateListings.map((q) => [q.get('fields'), q.get('limit'), q.has('after')]),
        [
          ['id,name,language,status,category,components', '100', false],
          ['id,name,language,status,category,components', '100', true],
          ['id,name,language,status,category,components', '100', true],
        ],
      );
      await eventually(async () => (notices.length >= 230 ? true : undefined), 10_000, 'change notices');

      graph.templates = graph.templates.filter((t) => t.name !== 'plantilla_003');
      graph.templates[0] = { ...graph.templates[0]!, status: 'PAUSED' };
      const command = await syncNow(session);
      assert.equal(command.status, 'sent', JSON.stringify(command.error));
      const after = await eventually(
        async () => {
          const docs = await templates(session);
          return docs.length === 229 ? docs : undefined;
        },
        20_000,
        'the removed template to go',
      );
      assert.equal(
        after.find((d) => d.name === 'plantilla_000')?.status,
        'PAUSED',
        'a status change follows the newer list',
      );
      const removed = await db
        .collection<TemplateDoc & { _id: string }>(Collections.waTemplates)
        .findOne({ _id: `${session}:plantilla_003:en_US` });
      assert.equal(removed?._deleted, true);
      // The event on EVENTS carries the list and the removal.
      const last = await bus.jsm.streams.getMessage('EVENTS', {
        last_by_subj: `evt.whatsapp.templates.synced.${session}`,
      });
      const synced = decodeEvent(last.data);
      assert.ok(synced.type === 'whatsapp.templates.synced.v1');
      assert.deepEqual(synced.data.removed, [{ name: 'plantilla_003', language: 'en_US' }]);
      assert.equal(synced.data.templates.length, 229);
    } finally {
      subscription.unsubscribe();
      await running.stop();
    }
  });

  test('"sync now" of a session whose WABA Meta does not know fails with Graph\'s error; nothing is recorded', async () => {
    const session = cloudSession();
    const running = await start(session, '999999999999999');
    try {
      const command = await syncNow(session);
      assert.equal(command.status, 'failed');
      assert.equal(command.error?.code, '100');
      assert.deepEqual(await templates(session), []);
    } finally {
      await running.stop();
    }
  });
});
