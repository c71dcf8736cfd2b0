import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page, Request } from 'playwright-core';
import { Collections } from '@puente/contracts';
import { eventually, uniqueName } from '@puente/bus/testing';
import { TEST_REALTIME_SECRET } from '@puente/realtime/testing';
import { runCli } from './cli.js';
import {
  agentToken,
  bubbleIds,
  cloudWebhook,
  conversationOrder,
  decodeQr,
  inboxHubWebhook,
  incoming,
  loadCatalogue,
  openChat,
  openInbox,
  screenshotPath,
  startCutProxy,
  startInboxStack,
  storedMessage,
  type InboxStack,
} from './inboxHarness.js';

/**
 * The inbox (issue 20) in headless Chromium against the real gateway, WhatsApp service and realtime,
 * Inbox Hub and the Cloud API as their fakes. The page's DOM contract: /work/briefs/inbox-contract.md,
 * summarized in docs/inbox.md.
 */

const pairing = uniqueName('pairing-');
let stack: InboxStack;

before(async () => {
  stack = await startInboxStack([pairing]);
});
after(async () => {
  await stack?.close();
});

/** A chat id of the session's customers (distinct per test). */
const customer = () => `3461${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}@s.whatsapp.net`;
const bubble = (id: string) => `#thread [data-id="${id}"]`;

/** A message arrives by webhook (answered 200) and the read model has it. */
async function arrive(chatId: string, messageId: string, text: string, at = new Date()): Promise<void> {
  await inboxHubWebhook(stack.gatewayUrl, stack.session, 'message.received', incoming(chatId, messageId, text, at));
  await storedMessage(stack.db, stack.session, messageId);
}

/**
 * Arms a watch in the page: resolves (in the page) with `Date.now()` at the first animation frame after
 * the bubble `id` is in the thread and `chat` heads the conversation list, i.e. when both are painted.
 */
async function armPaintWatch(page: Page, name: string, id: string, chat: string): Promise<void> {
  await page.evaluate(
    ({ name, id, chat }) => {
      const done = () =>
        document.querySelector(`#thread [data-id="${CSS.escape(id)}"]`) !== null &&
        document.querySelector('#conversations [data-chat]')?.getAttribute('data-chat') === chat;
      (window as unknown as Record<string, Promise<number>>)[name] = new Promise<number>((resolve) => {
        const observer = new MutationObserver(() => check());
        const check = () => {
          if (!done()) return;
          observer.disconnect();
          requestAnimationFrame(() => resolve(Date.now()));
        };
        observer.observe(document.body, { subtree: true, childList: true, attributes: true });
        check();
      });
    },
    { name, id, chat },
  );
}

const paintedAt = (page: Page, name: string) =>
  page.evaluate((name) => (window as unknown as Record<string, Promise<number>>)[name]!, name);

describe('inbox in Chromium', () => {
  test('a webhook message shows in the open thread and heads the list within 1 s; a duplicate counts once; opening clears the badge with one mark-read', async (t) => {
    const [a, b] = [customer(), customer()];
    await arrive(a, uniqueName('A1-'), 'Hola, ¿tienen stock?', new Date(Date.now() - 120_000));
    await arrive(b, uniqueName('B1-'), 'Buenas tardes', new Date(Date.now() - 60_000));
    const { page, errors } = await openInbox(stack.browser, stack.url, agentToken('ana', [stack.session]));
    const readRequests: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/chats\/[^/]+\/read$/.test(new URL(r.url()).pathname))
        readRequests.push(decodeURIComponent(new URL(r.url()).pathname.split('/').at(-2)!));
    });
    await page.locator(`#sessions [data-session="${stack.session}"]`).click();
    await eventually(
      async () => ((await conversationOrder(page)).slice(0, 2).join() === [b, a].join() ? true : undefined),
      10_000,
      'b above a',
    );
    await openChat(page, stack.session, a);
    await eventually(
      () => (stack.inboxHub.reads.filter((r) => r.chatId === a).length === 1 ? true : undefined),
      15_000,
      'a marked read',
    );

    // Live: the open chat's new message, timed from the webhook's 200 to its paint (in the page's clock).
    const live = uniqueName('A2-');
    await armPaintWatch(page, 'live', live, a);
    await inboxHubWebhook(stack.gatewayUrl, stack.session, 'message.received', incoming(a, live, 'Llegó en vivo ✓'));
    const answeredAt = Date.now();
    const elapsed = (await paintedAt(page, 'live')) - answeredAt;
    t.diagnostic(`webhook's 200 to painted: ${elapsed} ms`);
    assert.ok(elapsed < 1_000, `painted ${elapsed} ms after the webhook's 200`);
    assert.equal(await page.locator(`${bubble(live)} [data-role=text]`).innerText(), 'Llegó en vivo ✓');
    assert.equal(await page.locator(bubble(live)).getAttribute('data-direction'), 'in');

    // b: one new message delivered twice, then another: the badge counts 1 + 2, not 4.
    const twice = incoming(b, uniqueName('B2-'), 'Dos veces');
    await inboxHubWebhook(stack.gatewayUrl, stack.session, 'message.received', twice);
    await inboxHubWebhook(stack.gatewayUrl, stack.session, 'message.received', twice);
    await inboxHubWebhook(
      stack.gatewayUrl,
      stack.session,
      'message.received',
      incoming(b, uniqueName('B3-'), 'Y otro'),
    );
    const badge = page.locator(`#conversations [data-chat="${b}"] [data-role=unread]`);
    await eventually(async () => ((await badge.innerText()) === '3' ? true : undefined), 10_000, 'the badge at 3');
    assert.equal((await conversationOrder(page))[0], b, 'b moved to the top');
    assert.match(await page.locator(`#conversations [data-chat="${b}"] [data-role=preview]`).innerText(), /Y otro/);
    await page.screenshot({ path: screenshotPath('conversations') });

    await page.locator(`#conversations [data-chat="${b}"]`).click();
    await page.locator(`#thread [data-id="${String(twice.messageId)}"]`).waitFor();
    await badge.waitFor({ state: 'detached' });
    await eventually(
      () => (stack.inboxHub.reads.filter((r) => r.chatId === b).length >= 1 ? true : undefined),
      15_000,
      'b marked read',
    );
    const unread = await eventually(
      async () => {
        const doc = await stack.db
          .collection(Collections.waConversations)
          .findOne({ _id: `${stack.session}:${b}` as never });
        return doc?.unreadCount === 0 ? doc : undefined;
      },
      10_000,
      'the read model to clear b',
    );
    assert.equal(unread.unreadCount, 0);
    // Opened again with nothing unread: no second mark-read.
    await page.locator(`#conversations [data-chat="${a}"]`).click();
    await page.locator(bubble(live)).waitFor();
    await page.locator(`#conversations [data-chat="${b}"]`).click();
    await page.locator(`#thread [data-id="${String(twice.messageId)}"]`).waitFor();
    assert.deepEqual(
      readRequests.filter((c) => c === b),
      [b],
      'the page asked once',
    );
    assert.equal(stack.inboxHub.reads.filter((r) => r.chatId === b).length, 1, 'the provider was asked once');
    assert.equal(await page.locator(`#thread [data-id="${String(twice.messageId)}"]`).count(), 1);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('a reply is pending at once, then sent, then read, on one bubble naming its agent', async () => {
    const chat = customer();
    await arrive(chat, uniqueName('R1-'), 'Quiero hacer un pedido');
    const { page, errors } = await openInbox(stack.browser, stack.url, agentToken('ana', [stack.session]));
    await openChat(page, stack.session, chat);
    const text = 'Claro, le ayudo con su pedido.'; // one reply of this text per stack
    // Every bubble showing this text, over time: the statuses it had and how many showed it at once.
    await page.evaluate((text) => {
      const w = window as unknown as { seen: { statuses: string[]; most: number; together: string[] } };
      w.seen = { statuses: [], most: 0, together: [] };
      const check = () => {
        const bubbles = [...document.querySelectorAll('#thread [data-id]')].filter(
          (n) => n.querySelector('[data-role=text]')?.textContent === text,
        );
        if (bubbles.length > w.seen.most)
          w.seen.together = bubbles.map((b) => `${b.getAttribute('data-id')}=${b.getAttribute('data-status')}`);
        w.seen.most = Math.max(w.seen.most, bubbles.length);
        for (const b of bubbles) {
          const status = b.getAttribute('data-status') ?? '';
          if (w.seen.statuses.at(-1) !== status) w.seen.statuses.push(status);
        }
      };
      new MutationObserver(check).observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        characterData: true,
      });
    }, text);
    // The command is held until the pending bubble shows: "at once" means before any answer.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held: Request | undefined;
    await page.route('**/commands/whatsapp/*/messages', async (route) => {
      held = route.request();
      await released;
      await route.continue();
    });
    await page.locator('#reply-text').fill(text);
    await page.locator('#reply button[type=submit]').click();
    const pending = page.locator('#thread [data-id^="pending:"]', { hasText: text });
    await pending.waitFor({ timeout: 5_000 });
    assert.equal(await pending.getAttribute('data-status'), 'pending');
    assert.equal(await pending.getAttribute('data-direction'), 'out');
    release();
    const body = (await eventually(() => held, 5_000, 'the send command')).postDataJSON() as {
      idempotencyKey?: string;
      text?: string;
    };
    assert.equal(body.text, text);
    assert.ok(body.idempotencyKey, 'the command carries an idempotency key');
    const send = await eventually(() => stack.inboxHub.sends.find((s) => s.body.message === text), 15_000, 'the send');
    const sent = page.locator(`#thread [data-id="${send.messageId}"]`);
    await eventually(
      async () => ((await sent.getAttribute('data-status')) === 'sent' ? true : undefined),
      15_000,
      'sent',
    );
    await stack.inboxHub.notify(stack.session, 'message.read', {
      messageId: send.messageId,
      chatId: chat,
      status: 'read',
      timestamp: new Date().toISOString(),
    });
    await eventually(
      async () => ((await sent.getAttribute('data-status')) === 'read' ? true : undefined),
      15_000,
      'read',
    );
    assert.match(await sent.locator('[data-role=agent]').innerText(), /\bana$/, 'the agent who sent it');
    await page.screenshot({ path: screenshotPath('thread') });
    const seen = await page.evaluate(
      () => (window as unknown as { seen: { statuses: string[]; most: number; together: string[] } }).seen,
    );
    assert.equal(seen.most, 1, `never two bubbles for the message: ${seen.together.join(', ')}`);
    assert.deepEqual(
      seen.statuses.filter((s) => s !== 'delivered'),
      ['pending', 'sent', 'read'],
    );
    assert.equal(await page.locator('#thread [data-id^="pending:"]').count(), 0);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('a failing provider shows failed with its reason; retry sends once more', async () => {
    const chat = customer();
    await arrive(chat, uniqueName('F1-'), '¿Me envían la factura?');
    const { page, errors } = await openInbox(stack.browser, stack.url, agentToken('luis', [stack.session]));
    await openChat(page, stack.session, chat);
    const hub = stack.inboxHub.sessions.get(stack.session)!;
    hub.connected = false; // Inbox Hub answers 409 "Session not connected"
    const text = `Adjunto la factura ${uniqueName('')}`;
    try {
      await page.locator('#reply-text').fill(text);
      await page.locator('#reply button[type=submit]').click();
      const failed = page.locator('#thread [data-status=failed]', { hasText: text });
      await failed.waitFor({ timeout: 15_000 });
      assert.match(await failed.locator('[data-role=reason]').innerText(), /Session not connected/);
    } finally {
      hub.connected = true;
    }
    const before = stack.inboxHub.sends.filter((s) => s.session === stack.session).length;
    await page.locator('#thread [data-status=failed]', { hasText: text }).locator('button[data-action=retry]').click();
    const send = await eventually(
      () => stack.inboxHub.sends.find((s) => s.body.message === text),
      15_000,
      'the retried send',
    );
    await page.locator(`#thread [data-id="${send.messageId}"][data-status=sent]`).waitFor({ timeout: 15_000 });
    assert.equal(stack.inboxHub.sends.filter((s) => s.session === stack.session).length, before + 1, 'sent once');
    assert.equal(stack.inboxHub.sends.filter((s) => s.body.message === text).length, 1);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('the pairing QR image decodes to the last session.qr and follows a new one', async () => {
    const qr = (n: number) =>
      `2@${Buffer.from(`fake-pairing-ref-${n}-${pairing}`).toString('base64')},${'QUJD'.repeat(10)},${n}`;
    await inboxHubWebhook(stack.gatewayUrl, pairing, 'session.qr', { qr: qr(1) });
    const { page, errors } = await openInbox(stack.browser, stack.url, agentToken('ana', [pairing]));
    const image = page.locator(`#sessions [data-session="${pairing}"] img[data-role=qr]`);
    await image.waitFor({ timeout: 15_000 });
    await eventually(async () => ((await decodeQr(image)) === qr(1) ? true : undefined), 10_000, 'the first QR');
    await page.screenshot({ path: screenshotPath('pairing') });
    await inboxHubWebhook(stack.gatewayUrl, pairing, 'session.qr', { qr: qr(2) });
    await eventually(async () => ((await decodeQr(image)) === qr(2) ? true : undefined), 15_000, 'the second QR');
    // Without send rights on the session: no QR at all.
    const { page: viewer } = await openInbox(stack.browser, stack.url, agentToken('mirona', undefined));
    await viewer.locator(`#sessions [data-session="${pairing}"]`).waitFor();
    assert.equal(await viewer.locator(`#sessions [data-session="${pairing}"] img[data-role=qr]`).count(), 0);
    assert.deepEqual(errors, []);
    await viewer.context().close();
    await page.context().close();
  });

  test('a connection cut for 10 s while messages arrive: after it, each message once, in order', async () => {
    const chat = customer();
    await arrive(chat, uniqueName('C0-'), 'Antes del corte');
    const proxy = await startCutProxy(stack.url);
    try {
      const { page } = await openInbox(stack.browser, proxy.url, agentToken('ana', [stack.session]));
      await openChat(page, stack.session, chat);
      const ids = Array.from({ length: 5 }, (_, i) => `${uniqueName('C-')}-${i}`);
      const before = await bubbleIds(page);
      proxy.cut();
      const cutAt = Date.now();
      // The page knows it is cut off (so the test really cut its socket).
      await page.locator('#conn[data-state=closed], #conn[data-state=connecting]').waitFor({ timeout: 10_000 });
      for (const [i, id] of ids.entries()) {
        await arrive(chat, id, `Durante el corte ${i + 1}`);
        // The outage's own length (the scenario), not a wait for the system.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - cutAt))));
      proxy.restore();
      await page.locator('#conn[data-state=open]').waitFor({ timeout: 30_000 });
      await eventually(
        async () => ((await page.locator(bubble(ids.at(-1)!)).count()) === 1 ? true : undefined),
        30_000,
        'the last message after reconnecting',
      );
      const after = await bubbleIds(page);
      assert.equal(new Set(after).size, after.length, `no bubble twice: ${after.join(', ')}`);
      assert.deepEqual(after, [...before, ...ids]);
    } finally {
      await proxy.close();
    }
  });

  test("a token without send rights gets the command API's 403 and the page says why", async () => {
    const chat = customer();
    await arrive(chat, uniqueName('N1-'), 'Hola');
    const token = agentToken('observadora', ['otra-sesion']);
    const forbidden = await fetch(`${stack.url}/commands/whatsapp/${stack.session}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: chat, text: 'no debería salir', idempotencyKey: uniqueName('k-') }),
    });
    assert.equal(forbidden.status, 403);
    const { page } = await openInbox(stack.browser, stack.url, token);
    await openChat(page, stack.session, chat);
    const answer = page.waitForResponse('**/commands/whatsapp/*/messages');
    await page.locator('#reply-text').fill('no debería salir');
    await page.locator('#reply button[type=submit]').click();
    assert.equal((await answer).status(), 403);
    await page.locator('#notice').waitFor();
    // Why, in the catalogue's words: "No permitido: <the gateway's reason>".
    const forbiddenText = (await loadCatalogue()).es['notice.forbidden']!;
    assert.ok(
      (await page.locator('#notice').innerText()).trim().startsWith(forbiddenText.split('{detail}')[0]!),
      await page.locator('#notice').innerText(),
    );
    assert.equal(await page.locator('#notice').getAttribute('role'), 'alert');
    assert.equal(stack.inboxHub.sends.filter((s) => s.body.message === 'no debería salir').length, 0);
    await page.context().close();
  });

  test('a revoked token is refused at once: the sign-in form with a message; the token is not left in the URL', async () => {
    const env = { ...process.env, REALTIME_JWT_SECRET: TEST_REALTIME_SECRET };
    const sub = uniqueName('agente-');
    const minted = await runCli(['token', '--sub', sub, '--channels', 'whatsapp.>', '--send', stack.session], env);
    assert.equal(minted.code, 0, minted.stderr);
    const { page } = await openInbox(stack.browser, stack.url, minted.stdout.trim());
    await page.locator(`#sessions [data-session="${stack.session}"]`).waitFor();
    assert.ok(!page.url().includes(minted.stdout.trim()), 'the token left the URL');
    assert.equal(await page.locator('form#signin').isVisible(), false);
    const revoked = await runCli(['token', 'revoke', sub], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await page.locator('form#signin').waitFor({ timeout: 5_000 });
    assert.equal((await page.locator('#notice').innerText()).trim(), (await loadCatalogue()).es['signin.revoked']);
    await page.screenshot({ path: screenshotPath('signin') });
    // Loaded again (the token in sessionStorage): still refused, never a blank page.
    await page.reload();
    await page.locator('form#signin').waitFor({ timeout: 10_000 });
    await page.context().close();
  });

  test('a Cloud API chat whose last inbound message is 25 h old offers the approved templates only, and sends one; a recent one free text', async () => {
    const [old, recent] = ['34699000001', '34699000002'];
    await cloudWebhook(stack.gatewayUrl, stack.cloudNumber, {
      from: old,
      id: `wamid.${uniqueName('old')}`,
      text: 'Mensaje de ayer',
      at: new Date(Date.now() - 25 * 3_600_000),
    });
    await cloudWebhook(stack.gatewayUrl, stack.cloudNumber, {
      from: recent,
      id: `wamid.${uniqueName('new')}`,
      text: 'Mensaje de hoy',
      at: new Date(Date.now() - 3_600_000),
    });
    const chatOf = (phone: string) => `${phone}@s.whatsapp.net`;
    await eventually(
      async () =>
        (await stack.db.collection(Collections.waConversations).countDocuments({ session: stack.cloudNumber })) === 2
          ? true
          : undefined,
      15_000,
      'both Cloud API conversations',
    );
    const { page, errors } = await openInbox(stack.browser, stack.url, agentToken('ana', [stack.cloudNumber]));
    await openChat(page, stack.cloudNumber, chatOf(old));
    await page.locator('[data-role=window-closed]').waitFor();
    assert.equal(await page.locator('#reply-text').isEditable(), false, 'no free text outside the window');
    await eventually(
      async () => {
        const options = await page
          .locator('select#template option')
          .evaluateAll((o) => o.filter((n) => (n as HTMLOptionElement).value).map((n) => n.textContent ?? ''));
        return options.some((v) => v.includes('seguimiento_pedido')) ? options : undefined;
      },
      10_000,
      'the approved template offered',
    ).then((options) => assert.ok(!options.some((v) => v.includes('promo_rechazada')), 'a rejected one is not'));
    await page.screenshot({ path: screenshotPath('templates') });
    // The template goes out as one (the Graph fake checks its shape).
    await page.locator('select#template').selectOption({ label: 'seguimiento_pedido (es)' });
    await page.locator('#reply button[type=submit]').click();
    const sent = await eventually(
      () => stack.graph.sends.find((s) => s.body.type === 'template' && s.body.to === old),
      15_000,
      'the template send',
    );
    assert.equal((sent.body.template as { name?: string }).name, 'seguimiento_pedido');
    await page.locator(`#conversations [data-chat="${chatOf(recent)}"]`).click();
    await page.locator('#reply-text').waitFor();
    assert.equal(await page.locator('#reply-text').isEditable(), true);
    await page.locator('[data-role=window-closed]').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('select#template').isVisible(), false, 'no templates inside the window');
    assert.deepEqual(errors, []);
    await page.context().close();
  });
});
