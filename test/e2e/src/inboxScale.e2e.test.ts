import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { Db } from 'mongodb';
import { Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime } from '@puente/realtime/testing';
import { agentToken, bubbleIds, launchChromium, openInbox, seedContacts, seedThread } from './inboxHarness.js';

/**
 * The inbox at size: a chat of 5,000 messages and a session of 10,000 contacts, seeded into the read
 * models (realtime serves what is there; no service needs to produce it).
 */

const COUNT = 5_000;
const CONTACTS = 10_000;
const session = uniqueName('historia-');
const chat = '51911111111@s.whatsapp.net';
const id = (n: number) => `m${String(n).padStart(5, '0')}`;

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
let browser: Browser;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  // The index the whatsapp projection declares for a chat's timeline.
  await db
    .collection(Collections.waMessages)
    .createIndex({ session: 1, chatId: 1, timestamp: -1 }, { name: 'chat_timeline' });
  await seedThread(db, session, chat, COUNT);
  await seedContacts(db, session, CONTACTS);
  rt = await startTestRealtime(bus, db);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await rt?.close();
  await database.drop();
  await bus.close();
});

/** A fresh page opens the chat: the time from the click to the frame after its newest bubble is in (page's clock). */
async function openThread() {
  const { page, errors, frames } = await openInbox(browser, rt.url, agentToken('ana', [session]));
  const httpPages: string[] = [];
  page.on('request', (r) => {
    if (/\/api\/whatsapp\.messages\..*cursor=/.test(r.url())) httpPages.push(r.url());
  });
  await page.locator(`#sessions [data-session="${session}"]`).click();
  const item = page.locator(`#conversations [data-chat="${chat}"]`);
  await item.waitFor();
  await page.evaluate((newest) => {
    const w = window as unknown as { opened: Promise<number> };
    w.opened = new Promise<number>((resolve) => {
      let clicked = 0;
      document.addEventListener('click', () => (clicked ||= performance.now()), { capture: true });
      const check = () => {
        if (!clicked || !document.querySelector(`#thread [data-id="${newest}"]`)) return;
        observer.disconnect();
        requestAnimationFrame(() => resolve(performance.now() - clicked));
      };
      const observer = new MutationObserver(check);
      observer.observe(document.body, { subtree: true, childList: true });
    });
  }, id(COUNT));
  const clickedAt = Date.now();
  await item.click();
  const elapsed = await page.evaluate(() => (window as unknown as { opened: Promise<number> }).opened);
  const subscribed = frames.find((f) => f.sent && f.at >= clickedAt && f.data.includes('whatsapp.messages.'));
  const snapshot = frames.find((f) => !f.sent && f.at >= clickedAt && /"op":"snapshot"/.test(f.data));
  const detail = `painted ${elapsed.toFixed(0)} ms after the click (test's view: subscribe +${
    subscribed ? subscribed.at - clickedAt : '?'
  } ms, snapshot +${snapshot ? snapshot.at - clickedAt : '?'} ms, ${snapshot?.data.length ?? 0} bytes)`;
  return { page, errors, frames, httpPages, elapsed, detail };
}

describe('inbox at size', () => {
  test('a chat of 5,000 messages: its newest page is painted under 1 s after it is opened; scrolling back loads older pages by time', async (t) => {
    // Three fresh pages: the best of them must be under 1 s (one opening on a loaded 2-core machine can
    // be late for reasons of its own; a page or server that is slow is slow in all three).
    const timings: number[] = [];
    let opened: Awaited<ReturnType<typeof openThread>> | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      await opened?.page.context().close();
      opened = await openThread();
      timings.push(opened.elapsed);
      t.diagnostic(`5,000-message chat, opening ${attempt + 1}: ${opened.detail}`);
    }
    const { page, errors, frames, httpPages } = opened!;
    assert.ok(
      Math.min(...timings) < 1_000,
      `newest page painted after ${timings.map((n) => n.toFixed(0)).join(', ')} ms`,
    );
    const first = await bubbleIds(page);
    assert.ok(first.length < COUNT / 5, `one page, not the whole chat (${first.length} bubbles)`);
    const contiguous = (ids: string[]) => {
      const oldest = Number(ids[0]!.slice(1));
      return Array.from({ length: COUNT - oldest + 1 }, (_, k) => id(oldest + k));
    };
    assert.deepEqual(first, contiguous(first), 'the newest messages, oldest at the top');
    for (let k = 0; k < 2; k++) {
      const before = (await bubbleIds(page))[0]!;
      await page.locator('#thread').evaluate((el) => {
        el.scrollTop = 0;
        el.dispatchEvent(new Event('scroll'));
      });
      await eventually(
        async () => ((await bubbleIds(page))[0]! < before ? true : undefined),
        10_000,
        `an older page after ${before}`,
      );
    }
    const loaded = await bubbleIds(page);
    assert.deepEqual(loaded, contiguous(loaded), 'each message once, in time order, no gap');
    assert.ok(loaded.length > first.length * 2 - 1, `two more pages (${first.length} -> ${loaded.length})`);
    const more = frames.filter((f) => f.sent && /"op":"more"/.test(f.data)).map((f) => f.data);
    assert.ok(
      more.length + httpPages.length >= 2,
      `older pages asked by cursor: ${[...more, ...httpPages].join(', ')}`,
    );
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('search among 10,000 contacts answers from the server; a contact without a conversation opens one', async () => {
    const token = agentToken('ana', [session]);
    const { page, errors } = await openInbox(browser, rt.url, token);
    await page.locator(`#sessions [data-session="${session}"]`).click();
    const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/search' && /09876/.test(r.url()));
    await page.locator('input#search').fill('Contacto 09876');
    const request = await asked;
    assert.equal(new URL(request.url()).searchParams.get('session'), session);
    assert.equal((await request.allHeaders()).authorization, `Bearer ${token}`);
    assert.ok(!request.url().includes(token), 'the token is not in the URL');
    const found = page.locator('#search-results [data-chat="51900009876@s.whatsapp.net"]');
    await found.waitFor({ timeout: 10_000 });
    assert.match(await found.innerText(), /Contacto 09876/);
    assert.equal(await page.locator('#search-results [data-chat]').count(), 1);
    await found.click();
    await page.locator('#thread').waitFor();
    await page.locator('#reply-text').waitFor();
    assert.equal(await page.locator('#thread [data-id]').count(), 0);
    assert.deepEqual(errors, []);
    await page.context().close();
  });
});
