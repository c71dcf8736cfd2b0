import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jidKind, normalizeJid, phoneOf } from './jid.js';

test('jid - one spelling per address: phones, @c.us, device suffixes, server case, BSUIDs', () => {
  const cases: [string, string, ReturnType<typeof jidKind>][] = [
    ['34612345678', '34612345678@s.whatsapp.net', 'user'],
    ['+34612345678', '34612345678@s.whatsapp.net', 'user'],
    ['34612345678@c.us', '34612345678@s.whatsapp.net', 'user'],
    ['34612345678:12@s.whatsapp.net', '34612345678@s.whatsapp.net', 'user'],
    [' 228139525189761@LID ', '228139525189761@lid', 'lid'],
    ['228139525189761:3@lid', '228139525189761@lid', 'lid'],
    ['120363025246125486@g.us', '120363025246125486@g.us', 'group'],
    ['status@broadcast', 'status@broadcast', 'broadcast'],
    ['120363000000000000@newsletter', '120363000000000000@newsletter', 'newsletter'],
    ['US.13491208655302741918', 'US.13491208655302741918@bsuid', 'bsuid'],
    ['BR.ENT.AbC123', 'BR.ENT.AbC123@bsuid', 'bsuid'],
  ];
  for (const [raw, normalized, kind] of cases) {
    assert.equal(normalizeJid(raw), normalized, raw);
    assert.equal(jidKind(normalizeJid(raw)), kind, raw);
    assert.equal(normalizeJid(normalized), normalized, `${raw}: idempotent`);
  }
  assert.equal(phoneOf('34612345678@s.whatsapp.net'), '34612345678');
  assert.equal(phoneOf('228139525189761@lid'), undefined);
});
