import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { ensureChromium } from '@puente/stack';
import { signSample } from '@puente/gateway';
import { startTestGateway, TEST_SAMPLE_SECRETS } from '@puente/gateway/testing';
import { signToken } from '@puente/runtime';
import { startTestRealtime, TEST_REALTIME_SECRET } from '@puente/realtime/testing';
import { Config, startWhatsApp } from '@puente/whatsapp';
import { FakeInboxHub } from '@puente/whatsapp/testing';

/**
 * The inbox page's smoke test: real gateway, whatsapp service (Inbox Hub fake as the provider) and
 * realtime; Chromium loads /inbox, sees the conversation a webhook started, opens its thread (marked
 * read once), and a reply goes out once and settles on one bubble. The full list of browser
 * tests lives in the inbox tests.
 */
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let inboxHub: FakeInboxHub;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
let whatsapp: Awaited<ReturnType<typeof startWhatsApp>>;
let browser: Browser | undefined;
const session = uniqueName('ventas-');
const chat = '34612345678@s.whatsapp.net';

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  gateway = await startTestGateway(bus);
  inboxHub = await new FakeInboxHub().start();
  inboxHub.sessions.set(session, { dbId: 7, connected: true, contacts: [], chats: [], messages: new Map() });
  whatsapp = await startWhatsApp({
    bus,
    db: database.db,
    logger,
    config: Config.parse({
      WHATSAPP_SESSIONS: session,
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
    }),
  });
  rt = await startTestRealtime(bus, database.db, { REALTIME_GATEWAY_URL: gateway.url });
});
after(async () => {
  await browser?.close();
  await rt.close();
  await whatsapp.stop();
  await inboxHub.stop();
  await gateway.close();
  await database.drop();
  await bus.close();
});

/** An Inbox Hub `message.received` delivery of a text from the customer, through the gateway. */
async function receive(messageId: string, text: string, at: Date): Promise<void> {
  const sample = signSample(
    'inboxhub',
    {
      event: 'message.received',
      sessionId: session,
      timestamp: at.toISOString(),
      data: {
        messageId,
        chatId: chat,
        from: chat,
        fromMe: false,
        pushName: 'Lucía Fernández',
        type: 'text',
        body: text,
        timestamp: at.toISOString(),
      },
    },
    TEST_SAMPLE_SECRETS,
  );
  const answer = await fetch(`${gateway.url}${sample.path}`, {
    method: 'POST',
    headers: sample.headers,
    body: sample.body,
  });
  assert.equal(answer.status, 200, await answer.text());
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}${name}.png` });
}

describe('the inbox page', () => {
  test('loads /inbox, shows the conversation and its thread, marks it read once, and a reply settles on one bubble', async () => {
    const yesterday = new Date(Date.now() - 26 * 3600_000);
    await receive('IN-1', 'Hola, ¿tenéis la talla 42?', yesterday);
    await receive('IN-2', '¿Y en azul?', new Date(yesterday.getTime() + 60_000));
    await receive('IN-3', 'Gracias 🙏', new Date(Date.now() - 60_000));
    await eventually(
      () =>
        database.db
          .collection('wa_conversations')
          .findOne({ session, unreadCount: 3 })
          .then((doc) => doc ?? undefined),
      15_000,
      'the conversation with three unread',
    );

    browser = await chromium.launch({
      executablePath: await ensureChromium(() => undefined),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
        problems.push(message.text());
    });
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });
    const token = signToken({ sub: 'ana', channels: ['whatsapp.>'], send: [session] }, TEST_REALTIME_SECRET, 600);
    await page.goto(`${rt.url}/inbox#token=${token}`);
    assert.equal(new URL(page.url()).hash, '', 'the token is gone from the URL');

    const item = page.locator(`#conversations [data-chat="${chat}"]`);
    await item.locator('[data-role=unread]', { hasText: '3' }).waitFor({ timeout: 15_000 });
    assert.equal(await item.locator('[data-role=name]').innerText(), '34612345678', 'no name yet: the number');
    assert.match(await item.locator('[data-role=preview]').innerText(), /Gracias/);
    assert.equal(await page.locator(`#sessions [data-session="${session}"] [data-role=status]`).count(), 1);
    await shot(page, 'inbox-list');

    await item.click();
    const first = page.locator('#thread [data-id="IN-1"]');
    await first.waitFor({ timeout: 10_000 });
    assert.equal(await first.getAttribute('data-direction'), 'in');
    assert.equal(await first.locator('[data-role=text]').innerText(), 'Hola, ¿tenéis la talla 42?');
    assert.equal(await page.locator('#thread [data-role=day]').count(), 2, 'yesterday and today');
    const order = await page
      .locator('#thread [data-id]')
      .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-id')));
    assert.deepEqual(order, ['IN-1', 'IN-2', 'IN-3']);
    await eventually(async () => (inboxHub.reads.length > 0 ? true : undefined), 10_000, 'the mark-read').catch(
      async (error: unknown) => {
        const commands = await database.db.collection('commands').find({}).toArray();
        throw new Error(
          `${(error as Error).message}; notice: ${await page.locator('#notice').textContent()}; commands: ${JSON.stringify(commands)}`,
        );
      },
    );
    await item.locator('[data-role=unread]').waitFor({ state: 'detached', timeout: 10_000 });

    await page.locator('#thread [data-id="IN-2"] [data-action=quote]').click();
    assert.match(await page.locator('#reply-quote').innerText(), /¿Y en azul\?/);
    await page.locator('#reply-text').fill('Sí, en azul también. ¿Te la reservo?');
    await page.locator('#reply button[type=submit]').click();
    const out = page.locator('#thread [data-direction=out]');
    await out.first().waitFor({ timeout: 2_000 });
    await page.locator('#thread [data-direction=out][data-status=sent]').waitFor({ timeout: 15_000 });
    assert.equal(await out.count(), 1, 'one bubble for the reply, the pending one replaced');
    assert.equal(await page.locator('#reply-quote').isVisible(), false, 'the quote went with the reply');
    assert.equal(await out.locator('[data-role=agent]').innerText(), 'Enviado por ana');
    assert.equal(inboxHub.sends.length, 1);
    assert.equal(inboxHub.reads.length, 1, 'opening the chat marked it read once');

    // A file: uploaded to the media store through realtime, sent by its hash, uploaded to the provider.
    const pdf = Buffer.from('%PDF-1.4 presupuesto de prueba, no es un documento real\n');
    await page
      .locator('#reply-file')
      .setInputFiles({ name: 'presupuesto.pdf', mimeType: 'application/pdf', buffer: pdf });
    await page.locator('#reply-text').fill('El presupuesto');
    await page.locator('#reply button[type=submit]').click();
    await eventually(async () => (inboxHub.sends.length === 2 ? true : undefined), 15_000, 'the send with the file');
    const sent = inboxHub.files.get(inboxHub.sends[1]!.messageId);
    assert.deepEqual(sent?.bytes, pdf);
    await page
      .locator('#thread [data-direction=out][data-status=sent] a[data-role=media]')
      .waitFor({ timeout: 15_000 });
    assert.equal(await out.count(), 2);
    await shot(page, 'inbox-thread');
    assert.deepEqual(problems, []);
  });
});
