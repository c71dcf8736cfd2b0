import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {
  allJsonSchemas,
  changeSubject,
  channelAllowed,
  Channels,
  ClientMessage,
  createEvent,
  decodeEvent,
  decodeToken,
  encodeToken,
  EventTypes,
  InvalidEventError,
  InvalidTokenError,
  jsonSchemaOf,
  parseEvent,
  StreamDefinitions,
  subjectFiltersFor,
  subjectOf,
  subjectPatternOf,
  UnknownEventTypeError,
  type DomainEvent,
  type Upcaster,
} from './index.js';
import { EventExamples } from './testing/index.js';

const NATS_TOKEN = /^[^.*>\s]+$/;

describe('contracts - subject tokens', () => {
  test('a JID encodes to one readable token and decodes back', () => {
    assert.equal(encodeToken('34612345678@s.whatsapp.net'), '34612345678@s~2Ewhatsapp~2Enet');
    assert.equal(decodeToken('34612345678@s~2Ewhatsapp~2Enet'), '34612345678@s.whatsapp.net');
  });

  test('any id round-trips and never yields a dot, wildcard or white space', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), (id) => {
        const token = encodeToken(id);
        assert.match(token, NATS_TOKEN);
        assert.equal(decodeToken(token), id);
      }),
      { numRuns: 2000 },
    );
  });

  test('non-canonical or malformed tokens are rejected', () => {
    for (const bad of ['a.b', 'a b', '~2e', '~4', 'a~ZZ', '', '~41'])
      assert.throws(() => decodeToken(bad), InvalidTokenError, bad);
    assert.throws(() => encodeToken(''), InvalidTokenError);
  });
});

describe('contracts - events', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);

  for (const type of EventTypes) {
    test(`${type}: the example validates, round-trips through JSON, and matches its JSON Schema`, () => {
      const event = createEvent(type, EventExamples[type] as never, { source: 'urn:puente:test' });
      const decoded = decodeEvent(new TextEncoder().encode(JSON.stringify(event)));
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(event)));
      const subject = subjectOf(event);
      assert.ok(
        subject.startsWith(
          ['whatsapp.send_message', 'whatsapp.mark_read', 'whatsapp.sync_session'].some((command) =>
            event.type.startsWith(command),
          )
            ? 'cmd.'
            : 'evt.',
        ),
        subject,
      );
      for (const token of subject.split('.')) assert.match(token, NATS_TOKEN);
      const validate = ajv.compile(jsonSchemaOf(type));
      assert.ok(validate(JSON.parse(JSON.stringify(event))), JSON.stringify(validate.errors));
    });
  }

  test('a contract violation names the field; an unknown type is its own error', () => {
    const event = createEvent('whatsapp.message.received.v1', EventExamples['whatsapp.message.received.v1'], {
      source: 'test',
    });
    const broken = { ...event, data: { ...event.data, chatId: 42 } };
    assert.throws(
      () => parseEvent(broken),
      (error: unknown) => error instanceof InvalidEventError && /chatId/.test(error.message),
    );
    assert.throws(() => parseEvent({ ...event, type: 'whatsapp.message.teleported.v1' }), UnknownEventTypeError);
    assert.throws(() => parseEvent({ ...event, specversion: '0.3' }), InvalidEventError);
  });

  test('older event versions are upcast on read, so replays keep working', () => {
    const v0: Upcaster = {
      from: 'kissflow.record.upserted.v0',
      to: 'kissflow.record.upserted.v1',
      upcast: (data) => {
        const old = data as { dataset: string; id: string; values: Record<string, unknown>; modified?: string };
        return {
          dataset: old.dataset,
          rowId: old.id,
          fields: old.values,
          modifiedAt: old.modified ?? null,
          origin: 'webhook',
        };
      },
    };
    const stored = {
      specversion: '1.0',
      id: 'e1',
      source: 'urn:old',
      type: 'kissflow.record.upserted.v0',
      time: '2024-01-01T00:00:00Z',
      data: { dataset: 'DS', id: 'r1', values: { A: 1 } },
    };
    const event = parseEvent(stored, [v0]) as DomainEvent;
    assert.equal(event.type, 'kissflow.record.upserted.v1');
    assert.deepEqual(event.data, { dataset: 'DS', rowId: 'r1', fields: { A: 1 }, modifiedAt: null, origin: 'webhook' });
    assert.throws(() => parseEvent(stored), UnknownEventTypeError, 'without the upcaster the old type is unknown');
  });
});

describe('contracts - streams, channels, protocol', () => {
  test('streams capture disjoint subject spaces', () => {
    const prefixes = Object.values(StreamDefinitions).flatMap((s) =>
      s.subjects.map((subject) => subject.split('.')[0]),
    );
    assert.equal(new Set(prefixes).size, prefixes.length);
  });

  test('a consumer filter derived from event types is the fewest subjects that select exactly them', () => {
    assert.equal(subjectPatternOf('whatsapp.message.received.v1'), 'evt.whatsapp.message.received.*');
    assert.equal(subjectPatternOf('glyms.row.created.v1'), 'evt.glyms.*.*');
    assert.equal(subjectPatternOf('bitrix.entity.synced.v1'), 'evt.bitrix.*.synced');
    const whatsappEvents = EventTypes.filter(
      (type) => type.startsWith('whatsapp.') && subjectPatternOf(type).startsWith('evt.'),
    );
    assert.deepEqual(subjectFiltersFor(whatsappEvents), ['evt.whatsapp.>']);
    assert.deepEqual(subjectFiltersFor(['kissflow.record.upserted.v1', 'kissflow.record.deleted.v1']), [
      'evt.kissflow.>',
    ]);
    assert.deepEqual(subjectFiltersFor(['kissflow.record.upserted.v1']), ['evt.kissflow.record.upserted.*']);
    assert.deepEqual(
      subjectFiltersFor(['whatsapp.session.status.v1', 'whatsapp.session.qr.v1', 'whatsapp.session.sync.v1']),
      ['evt.whatsapp.session.>'],
    );
    assert.deepEqual(subjectFiltersFor(['whatsapp.session.status.v1', 'whatsapp.send_message.v1']), [
      'evt.whatsapp.session.status.*',
      'cmd.whatsapp.send_message.*',
    ]);
  });

  test('channel patterns match like NATS subjects', () => {
    const messages = Channels.whatsappMessages('ventas', '34612345678@s.whatsapp.net');
    assert.equal(messages, 'whatsapp.messages.ventas.34612345678@s~2Ewhatsapp~2Enet');
    assert.ok(channelAllowed('whatsapp.>', messages));
    assert.ok(channelAllowed('whatsapp.messages.ventas.*', messages));
    assert.ok(channelAllowed('whatsapp.messages.*.*', messages));
    assert.ok(!channelAllowed('whatsapp.messages.soporte.>', messages));
    assert.ok(!channelAllowed('whatsapp.messages', messages));
    assert.ok(!channelAllowed('whatsapp.messages.ventas.*.*', messages));
    assert.ok(channelAllowed('kissflow.*', Channels.kissflow('DS_Documentos_Cliente')));
    assert.ok(!channelAllowed('>', ''));
    assert.equal(
      changeSubject(messages, 'ventas:3EB0'),
      'chg.whatsapp.messages.ventas.34612345678@s~2Ewhatsapp~2Enet.ventas:3EB0',
    );
  });

  test('WebSocket client frames are validated', () => {
    assert.ok(
      ClientMessage.safeParse({ op: 'subscribe', channel: 'whatsapp.sessions', since: { epoch: 'e', position: 4 } })
        .success,
    );
    assert.ok(!ClientMessage.safeParse({ op: 'subscribe' }).success);
    assert.ok(!ClientMessage.safeParse({ op: 'drop_tables' }).success);
  });
});

test('contracts - docs/schemas is up to date (npm run contracts:schema)', () => {
  const dir = fileURLToPath(new URL('../../../docs/schemas/', import.meta.url));
  const expected = allJsonSchemas();
  const present = readdirSync(dir).sort();
  assert.deepEqual(present, [...expected.keys()].sort(), 'the set of schema files');
  for (const [file, text] of expected)
    assert.equal(readFileSync(`${dir}${file}`, 'utf8'), text, `${file} is stale: run npm run contracts:schema`);
});
