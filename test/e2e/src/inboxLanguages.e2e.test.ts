import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Collections } from '@puente/contracts';
import { eventually, uniqueName } from '@puente/bus/testing';
import { signToken } from '@puente/runtime';
import { TEST_REALTIME_SECRET } from '@puente/realtime/testing';
import {
  agentToken,
  cloudWebhook,
  inboxHubWebhook,
  incoming,
  loadCatalogue,
  openChat,
  openInbox,
  screenshotPath,
  startInboxStack,
  storedMessage,
  type Catalogue,
  type InboxStack,
} from './inboxHarness.js';

/**
 * Spanish and English: every screen of the inbox walked in both languages, its visible text compared
 * with the catalogue (services/realtime/src/inbox/catalogue.ts). A string passes when it is a
 * catalogue entry of the page's language (placeholders match any value), a data value this test put
 * in (names, texts, ids, numbers), a date or time formatted in the page's language (its words are
 * Intl's month, weekday and relative-time words of that language), or has no letters at all (ticks,
 * separators). Anything else is untranslated: missing from the catalogue, or from the other language.
 */

type Lang = 'es' | 'en';
let stack: InboxStack;
let catalogue: Catalogue;
const chat = '34611222333@s.whatsapp.net';
const cloudCustomer = '34699111222';
/** What this test inserted: shown as data, never translated. */
const data = new Set<string>();

before(async () => {
  stack = await startInboxStack();
  catalogue = await loadCatalogue();
  const first = uniqueName('L1-');
  await inboxHubWebhook(
    stack.gatewayUrl,
    stack.session,
    'message.received',
    incoming(chat, first, 'Hola, quisiera información', new Date(Date.now() - 26 * 3_600_000), 'Marta Gómez'),
  );
  await inboxHubWebhook(
    stack.gatewayUrl,
    stack.session,
    'message.received',
    incoming(chat, uniqueName('L2-'), '¿Siguen abiertos?', new Date(), 'Marta Gómez'),
  );
  await storedMessage(stack.db, stack.session, first);
  await cloudWebhook(stack.gatewayUrl, stack.cloudNumber, {
    from: cloudCustomer,
    id: `wamid.${uniqueName('lang')}`,
    text: 'Mensaje de anteayer',
    at: new Date(Date.now() - 50 * 3_600_000),
    name: 'Pedro Ruiz',
  });
  await eventually(
    async () =>
      (await stack.db.collection(Collections.waConversations).countDocuments({ session: stack.cloudNumber })) === 1
        ? true
        : undefined,
    15_000,
    'the Cloud API conversation',
  );
  for (const value of [
    stack.session,
    stack.cloudNumber,
    chat,
    chat.split('@')[0]!,
    `+${chat.split('@')[0]!}`,
    cloudCustomer,
    `+${cloudCustomer}`,
    `${cloudCustomer}@s.whatsapp.net`,
    'Hola, quisiera información',
    '¿Siguen abiertos?',
    'Mensaje de anteayer',
    'Marta Gómez',
    'Pedro Ruiz',
    'Cliente de prueba',
    'aviso_pedido (es)',
    'seguimiento_pedido (es)',
    'Hola, le escribimos por su pedido.',
    'Su pedido está listo.',
    'ana',
    'lectora',
  ])
    data.add(value);
});
after(async () => {
  await stack?.close();
});

/** Every visible string of the page: text nodes of rendered elements, and the text-bearing attributes. */
function visibleStrings(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const shown = (el: Element | null) =>
      el !== null && (el.closest('option') !== null || (el as HTMLElement).checkVisibility?.() !== false);
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent?.trim();
      const parent = node.parentElement;
      if (!text || !parent || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(parent.tagName)) continue;
      if (shown(parent)) out.push(text);
    }
    for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], img[alt]'))
      if (shown(el))
        for (const name of ['placeholder', 'title', 'aria-label', 'alt']) {
          const value = el.getAttribute(name)?.trim();
          if (value) out.push(value);
        }
    out.push(document.title);
    return out;
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A catalogue entry as a whole-string pattern, its placeholders matching any value; none for bare placeholders. */
function pattern(entry: string): RegExp | undefined {
  if (!/\p{L}/u.test(entry.replace(/\{\w+\}/g, ''))) return undefined;
  return new RegExp(
    `^${entry
      .split(/\{\w+\}/)
      .map(escape)
      .join('[\\s\\S]*?')}$`,
    'u',
  );
}

/** The words Intl writes in dates, times and relative times in `lang` (Chromium formats with the same ICU data). */
function intlWords(lang: Lang): Set<string> {
  const words = new Set<string>();
  const add = (text: string) => {
    for (const w of text.toLowerCase().match(/\p{L}+/gu) ?? []) words.add(w);
  };
  const options: Intl.DateTimeFormatOptions[] = [
    { dateStyle: 'full' },
    { dateStyle: 'long' },
    { dateStyle: 'medium' },
    { dateStyle: 'full', timeStyle: 'short' },
    { dateStyle: 'medium', timeStyle: 'short' },
    { timeStyle: 'short' },
    { hour: 'numeric', minute: '2-digit' },
    { weekday: 'long' },
    { weekday: 'short' },
    { month: 'long' },
    { month: 'short' },
    { day: 'numeric', month: 'short' },
    { day: 'numeric', month: 'long', year: 'numeric' },
    { weekday: 'long', day: 'numeric', month: 'long' },
    { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' },
  ];
  for (let m = 0; m < 12; m++)
    for (let d = 1; d <= 7; d++)
      for (const o of options)
        add(new Intl.DateTimeFormat(lang, o).format(new Date(Date.UTC(2026, m, d, m < 6 ? 9 : 21, 5))));
  for (const style of ['long', 'short', 'narrow'] as const)
    for (const numeric of ['always', 'auto'] as const) {
      const rtf = new Intl.RelativeTimeFormat(lang, { style, numeric });
      for (const unit of ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'] as const)
        for (const n of [-10, -2, -1, 0, 1, 2, 10]) add(rtf.format(n, unit));
    }
  return words;
}

/** The strings of `texts` that are not the page language's: each with why. */
function untranslated(texts: string[], lang: Lang): string[] {
  const other: Lang = lang === 'es' ? 'en' : 'es';
  const own = Object.values(catalogue[lang]).flatMap((e) => pattern(e) ?? []);
  const foreign = Object.values(catalogue[other]).flatMap((e) => pattern(e) ?? []);
  const dates = intlWords(lang);
  const values = [...data].sort((a, b) => b.length - a.length);
  const problems: string[] = [];
  for (const text of texts) {
    if (!/\p{L}/u.test(text)) continue;
    if (own.some((p) => p.test(text))) continue;
    let rest = text;
    for (const value of values) rest = rest.split(value).join(' ');
    // Ids tests make with uniqueName (sessions of test files running beside this one on the same NATS too).
    rest = rest.replace(/\b[a-z]+-[0-9a-f]{12}\b/g, ' ');
    if (!/\p{L}/u.test(rest)) continue;
    const words = rest.toLowerCase().match(/\p{L}+/gu) ?? [];
    if (words.every((w) => dates.has(w))) continue;
    problems.push(
      foreign.some((p) => p.test(text))
        ? `"${text}" is ${other}, not ${lang}`
        : `"${text}" is not in the ${lang} catalogue`,
    );
  }
  return [...new Set(problems)];
}

async function walk(lang: Lang): Promise<Record<string, string[]>> {
  const seen: Record<string, string[]> = {};
  const screen = async (name: string, page: Page) => {
    seen[name] = await visibleStrings(page);
    assert.equal(await page.locator('html').getAttribute('lang'), lang, `${name}: <html lang>`);
    if (name === 'reply' && lang === 'en') await page.screenshot({ path: screenshotPath('english') });
  };
  const fresh = async () => {
    const context = await stack.browser.newContext({ viewport: { width: 1280, height: 800 } });
    if (lang !== 'es') await context.addInitScript((l) => localStorage.setItem('puente.inbox.lang', l), lang);
    return context.newPage();
  };

  // Sign-in, and the sign-in with its message (an expired token).
  const signin = await fresh();
  await signin.goto(`${stack.url}/inbox`);
  await signin.locator('form#signin').waitFor();
  await screen('signin-empty', signin);
  const expired = signToken({ sub: 'ana', channels: ['whatsapp.>'] }, TEST_REALTIME_SECRET, 60, Date.now() - 600_000);
  await signin.goto(`${stack.url}/inbox#token=${expired}`);
  await signin.reload();
  await signin.locator('form#signin').waitFor();
  await signin.locator('#notice').waitFor();
  await screen('signin-expired', signin);
  await signin.context().close();

  // Sessions, conversations, thread, a reply sent.
  const { page } = await openInbox(
    stack.browser,
    stack.url,
    agentToken('ana', [stack.session, stack.cloudNumber]),
    lang,
  );
  await page.locator(`#sessions [data-session="${stack.session}"]`).waitFor();
  await screen('sessions', page);
  await page.locator(`#sessions [data-session="${stack.session}"]`).click();
  await page.locator(`#conversations [data-chat="${chat}"]`).waitFor();
  await screen('conversations', page);
  await openChat(page, stack.session, chat);
  await page.locator('#thread [data-role=text]', { hasText: '¿Siguen abiertos?' }).waitFor();
  await screen('thread', page);
  const reply = lang === 'es' ? 'Sí, hasta las 20 h' : 'Sí, hasta las 21 h';
  data.add(reply);
  await page.locator('#reply-text').fill(reply);
  await page.locator('#reply button[type=submit]').click();
  await page.locator('#thread [data-direction=out][data-status=sent]', { hasText: reply }).waitFor({ timeout: 15_000 });
  await screen('reply', page);

  // A Cloud API chat out of its window: templates only.
  await openChat(page, stack.cloudNumber, `${cloudCustomer}@s.whatsapp.net`);
  await page.locator('[data-role=window-closed]').waitFor();
  await page.locator('select#template').waitFor();
  await screen('templates', page);
  await page.context().close();

  // A notice: sending without rights on the session.
  const { page: reader } = await openInbox(stack.browser, stack.url, agentToken('lectora', ['otra']), lang);
  await openChat(reader, stack.session, chat);
  if (await reader.locator('#reply-text').isEditable()) {
    await reader.locator('#reply-text').fill('no sale');
    data.add('no sale');
    await reader.locator('#reply button[type=submit]').click();
  }
  await reader.locator('#notice').waitFor();
  await screen('notice', reader);
  await reader.context().close();
  return seen;
}

describe('inbox languages', () => {
  test('Spanish by default: every screen shows Spanish catalogue strings only', async () => {
    const seen = await walk('es');
    const problems = Object.entries(seen).flatMap(([name, texts]) =>
      untranslated(texts, 'es').map((p) => `${name}: ${p}`),
    );
    assert.deepEqual(problems, []);
  });

  test('English chosen: every screen shows English catalogue strings only', async () => {
    const seen = await walk('en');
    const problems = Object.entries(seen).flatMap(([name, texts]) =>
      untranslated(texts, 'en').map((p) => `${name}: ${p}`),
    );
    assert.deepEqual(problems, []);
  });

  test('the language selector switches the page and is remembered', async () => {
    const { page } = await openInbox(stack.browser, stack.url, agentToken('ana', [stack.session]));
    assert.equal(await page.locator('html').getAttribute('lang'), 'es');
    await page.locator('select#lang').selectOption('en');
    await eventually(
      async () => ((await page.locator('html').getAttribute('lang')) === 'en' ? true : undefined),
      5_000,
      'lang=en',
    );
    assert.equal(await page.evaluate(() => localStorage.getItem('puente.inbox.lang')), 'en');
    await page.locator(`#sessions [data-session="${stack.session}"]`).waitFor();
    assert.deepEqual(untranslated(await visibleStrings(page), 'en'), []);
    await page.reload();
    await page.locator('#sessions').waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await page.context().close();
  });

  test('the catalogue has the same keys in both languages, with the same placeholders', () => {
    assert.deepEqual(Object.keys(catalogue.en).sort(), Object.keys(catalogue.es).sort());
    for (const [key, es] of Object.entries(catalogue.es)) {
      const holes = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
      assert.deepEqual(holes(catalogue.en[key]!), holes(es), key);
    }
  });
});
