import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageTemplate } from '@puente/contracts';
import { at, ev, evolveAll } from '../testing/given.js';

const session = '106540352242922';
const template = (name: string, status = 'APPROVED', language = 'es'): MessageTemplate => ({
  id: `1667${name.length}${language.length}`,
  name,
  language,
  status,
  category: 'UTILITY',
  components: [{ type: 'BODY', text: `Hola {{1}}: ${name}` }],
});
const synced = (minute: number, templates: MessageTemplate[], removed: { name: string; language: string }[] = []) =>
  ev('whatsapp.templates.synced.v1', {
    session,
    provider: 'cloud-api',
    wabaId: '102290129340398',
    templates,
    removed,
    timestamp: at(minute),
  });

describe('whatsapp projections - templates', () => {
  test('given a list, then one document per template and language with its status, category and components', () => {
    const state = evolveAll([synced(1, [template('pedido_listo'), template('pedido_listo', 'PENDING', 'en_US')])]);
    const es = state.templates.get(`${session}:pedido_listo:es`)!;
    assert.deepEqual(
      [es.session, es.name, es.language, es.status, es.category, es.wabaId, es.syncedAt],
      [session, 'pedido_listo', 'es', 'APPROVED', 'UTILITY', '102290129340398', at(1)],
    );
    assert.deepEqual(es.components, [{ type: 'BODY', text: 'Hola {{1}}: pedido_listo' }]);
    assert.equal(state.templates.get(`${session}:pedido_listo:en_US`)!.status, 'PENDING');
  });
  test('a newer list changes a status and removes a template; an older list arriving late changes nothing', () => {
    const first = synced(1, [template('a'), template('b')]);
    const second = synced(2, [template('a', 'PAUSED')], [{ name: 'b', language: 'es' }]);
    for (const order of [
      [first, second],
      [second, first],
    ]) {
      const state = evolveAll(order);
      assert.equal(state.templates.get(`${session}:a:es`)!.status, 'PAUSED');
      assert.equal(state.templates.get(`${session}:b:es`)?._deleted, true, 'b is gone, whichever list came first');
    }
  });
  test('a removed template listed again comes back; the same list again changes nothing', () => {
    const state = evolveAll([synced(1, [template('a')]), synced(2, [], [{ name: 'a', language: 'es' }])]);
    assert.equal(state.templates.get(`${session}:a:es`)!._deleted, true);
    evolveAll([synced(3, [template('a')])], state, 3);
    const back = state.templates.get(`${session}:a:es`)!;
    assert.deepEqual([back._deleted, back.status, back.syncedAt], [undefined, 'APPROVED', at(3)]);
    const before = structuredClone(state.templates);
    evolveAll([synced(3, [template('a')])], state, 10);
    assert.deepEqual(state.templates, before);
  });
  test('components are stored without review examples and without arrays directly inside arrays', () => {
    const state = evolveAll([
      synced(1, [
        {
          ...template('x'),
          components: [
            { type: 'BODY', text: 'Hola {{1}}', example: { body_text: [['Juan']] } },
            {
              type: 'BUTTONS',
              buttons: [{ type: 'URL', url: 'https://example.com/{{1}}', example: ['a'] }],
              odd: [[1, 2]],
            },
          ],
        },
      ]),
    ]);
    assert.deepEqual(state.templates.get(`${session}:x:es`)!.components, [
      { type: 'BODY', text: 'Hola {{1}}' },
      { type: 'BUTTONS', buttons: [{ type: 'URL', url: 'https://example.com/{{1}}' }], odd: ['[1,2]'] },
    ]);
  });
});
