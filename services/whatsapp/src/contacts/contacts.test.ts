import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, ev, evolveAll } from '../testing/given.js';

describe('whatsapp projections - contacts', () => {
  test('a Cloud API contact known only by username (user_id) is keyed by its BSUID', () => {
    const state = evolveAll([
      ev('whatsapp.contact.updated.v1', {
        session: '106540352242922',
        provider: 'cloud-api',
        jid: 'US.13491208655302741918',
        name: 'Pat',
        timestamp: at(1),
      }),
    ]);
    const contact = state.contacts.get('106540352242922:US.13491208655302741918@bsuid')!;
    assert.deepEqual(
      [contact.kind, contact.userId, contact.phone, contact.name],
      ['bsuid', 'US.13491208655302741918', undefined, 'Pat'],
    );
  });
});
