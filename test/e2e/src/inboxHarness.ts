import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import jsqr from 'jsqr';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { PNG } from 'pngjs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { z } from 'zod';
import { Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { ensureChromium } from '@puente/stack';
import { signToken } from '@puente/runtime';
import { signSample } from '@puente/gateway';
import { startTestGateway, TEST_SAMPLE_SECRETS } from '@puente/gateway/testing';
import { startTestRealtime, TEST_REALTIME_SECRET } from '@puente/realtime/testing';
import { Config, startWhatsApp } from '@puente/whatsapp';
import { FakeGraph, FakeInboxHub } from '@puente/whatsapp/testing';

/**
 * The inbox's end-to-end harness: NATS and FerretDB (from the test runner), the gateway, the WhatsApp
 * service and realtime in this process, Inbox Hub and the Cloud API as the fakes of
 * `@puente/whatsapp/testing` (which enforce the real shapes), and headless Chromium. Each test file
 * starts one stack for its own sessions (`WHATSAPP_SESSIONS`: consumers of its own on the shared NATS).
 */

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Where screenshots go: docs/images when UPDATE_SCREENSHOTS=1 (the docs' pictures), test/e2e/artifacts otherwise. */
export function screenshotPath(name: string): string {
  const dir =
    process.env.UPDATE_SCREENSHOTS === '1'
      ? `${root}docs/images/`
      : fileURLToPath(new URL('../artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return `${dir}inbox-${name}.png`;
}

export interface InboxStack {
  bus: Bus;
  db: Db;
  gatewayUrl: string;
  inboxHub: FakeInboxHub;
  graph: FakeGraph;
  /** Realtime's base URL (the inbox is at `${url}/inbox`). */
  url: string;
  /** An Inbox Hub session served by this stack (connected, its webhook pointed at the gateway). */
  session: string;
  /** A Cloud API phone number id served by this stack. */
  cloudNumber: string;
  browser: Browser;
  close(): Promise<void>;
}

/** Starts the services, the fakes and Chromium; `sessions` more Inbox Hub sessions to serve (each connected, hooked). */
export async function startInboxStack(extraSessions: string[] = []): Promise<InboxStack> {
  const bus = await connectTestBus();
  const database = await testDatabase();
  const db = database.db;
  const gateway = await startTestGateway(bus);
  const inboxHub = await new FakeInboxHub().start();
  const cloudNumber = String(100_000_000_000_000 + Math.floor(Math.random() * 1e12));
  const graph = await new FakeGraph({ phoneNumberIds: [cloudNumber] }).start();
  // The number's WABA templates, which the service lists on start: two approved, one rejected.
  const template = (id: string, name: string, status: 'APPROVED' | 'REJECTED', text: string) => ({
    id,
    name,
    language: 'es',
    status,
    category: 'UTILITY' as const,
    components: [{ type: 'BODY', text }],
  });
  graph.templates = [
    template('900000000000001', 'seguimiento_pedido', 'APPROVED', 'Hola, le escribimos por su pedido.'),
    template('900000000000002', 'aviso_pedido', 'APPROVED', 'Su pedido está listo.'),
    template('900000000000003', 'promo_rechazada', 'REJECTED', 'Oferta que Meta no aprobó.'),
  ];
  const session = uniqueName('ventas-');
  for (const s of [session, ...extraSessions]) {
    inboxHub.seed(s, { contacts: 0, chats: 0, messagesPerChat: 0 }).webhook = {
      url: `${gateway.url}/webhooks/inboxhub`,
      secret: TEST_SAMPLE_SECRETS.inboxhub,
      events: ['*'],
    };
  }
  const whatsapp = await startWhatsApp({
    bus,
    db,
    logger,
    config: Config.parse({
      WHATSAPP_SESSIONS: [session, ...extraSessions, cloudNumber].join(','),
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
      WHATSAPP_ACCESS_TOKEN: graph.accessToken,
      WHATSAPP_GRAPH_URL: graph.url,
      WHATSAPP_WABA_IDS: `${cloudNumber}:${graph.wabaId}`,
      WHATSAPP_RECONCILE_INTERVAL_MS: '1000',
    }),
  });
  // The sessions say they are connected (the pairing one stays waiting for its QR), as Inbox Hub reports it.
  await inboxHubWebhook(gateway.url, session, 'session.connected', { status: 'connected', phone: '34910000001' });
  const realtime = await startTestRealtime(bus, db, { REALTIME_GATEWAY_URL: gateway.url });
  const browser = await launchChromium();
  return {
    bus,
    db,
    gatewayUrl: gateway.url,
    inboxHub,
    graph,
    url: realtime.url,
    session,
    cloudNumber,
    browser,
    close: async () => {
      await browser.close();
      await realtime.close();
      await whatsapp.stop();
      await graph.stop();
      await inboxHub.stop();
      await gateway.close();
      await database.drop();
      await bus.close();
    },
  };
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: await ensureChromium(() => undefined),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** An agent's token as `puente token --sub <sub> --channels … --send …` mints it (realtime and the gateway share its key). */
export function agentToken(
  sub: string,
  send: string[] | undefined,
  channels: string[] = ['whatsapp.>'],
  ttlSeconds = 3600,
): string {
  return signToken({ sub, channels, ...(send ? { send } : {}) }, TEST_REALTIME_SECRET, ttlSeconds);
}

/** A WebSocket frame the page sent or received, when the test saw it. */
export interface Frame {
  at: number;
  sent: boolean;
  data: string;
}

/**
 * A page with the inbox open on `token` (through `#token=`), the language chosen, the page's errors
 * collected (a test asserts there were none); `base` another origin in front of realtime (a proxy).
 */
export async function openInbox(
  browser: Browser,
  base: string,
  token: string,
  lang: 'es' | 'en' = 'es',
): Promise<{ page: Page; errors: string[]; frames: Frame[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'es-ES' });
  const page = await context.newPage();
  const errors: string[] = [];
  const frames: Frame[] = [];
  const text = (payload: string | Buffer) => (typeof payload === 'string' ? payload : payload.toString());
  page.on('websocket', (ws) => {
    ws.on('framesent', (frame) => frames.push({ at: Date.now(), sent: true, data: text(frame.payload) }));
    ws.on('framereceived', (frame) => frames.push({ at: Date.now(), sent: false, data: text(frame.payload) }));
  });
  page.on('pageerror', (error) => errors.push(error.message));
  // A failed load is named by its response below (the console's line does not say which).
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      errors.push(message.text());
  });
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() >= 400 && path !== '/favicon.ico') errors.push(`${response.status()} ${path}`);
  });
  if (lang !== 'es') await page.addInitScript((l) => localStorage.setItem('puente.inbox.lang', l), lang);
  await page.goto(`${base}/inbox#token=${token}`);
  await page.locator('#sessions').waitFor();
  return { page, errors, frames };
}

/** Opens a session and one of its chats in the page; waits for the thread. */
export async function openChat(page: Page, session: string, chatId: string): Promise<void> {
  await page.locator(`#sessions [data-session="${session}"]`).click();
  await page.locator(`#conversations [data-chat="${chatId}"]`).click();
  await page.locator('#thread').waitFor();
}

/** The ids of the thread's bubbles, in display order. */
export function bubbleIds(page: Page): Promise<string[]> {
  return page.locator('#thread [data-id]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-id') ?? ''));
}

/** The chat ids of the conversation list, in display order. */
export function conversationOrder(page: Page): Promise<string[]> {
  return page
    .locator('#conversations [data-chat]')
    .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-chat') ?? ''));
}

/** Decodes the QR code an element shows, from a screenshot of it (what a phone's camera would see). */
export async function decodeQr(element: Locator): Promise<string | undefined> {
  const png = PNG.sync.read(await element.screenshot());
  // A quiet zone around the code helps the decoder when the image is cropped tight.
  const pad = 16;
  const width = png.width + pad * 2;
  const height = png.height + pad * 2;
  const data = new Uint8ClampedArray(width * height * 4).fill(255);
  for (let y = 0; y < png.height; y++)
    for (let x = 0; x < png.width; x++) {
      const from = (y * png.width + x) * 4;
      const to = ((y + pad) * width + x + pad) * 4;
      for (let c = 0; c < 4; c++) data[to + c] = png.data[from + c]!;
    }
  // jsqr is CommonJS: its function is `default` of module.exports.
  return jsqr.default(data, width, height)?.data;
}

/** Inbox Hub's webhook delivery, signed, straight to the gateway; resolves when it answered 200. */
export async function inboxHubWebhook(
  gatewayUrl: string,
  session: string,
  event: string,
  data: Record<string, unknown>,
): Promise<void> {
  const sample = signSample(
    'inboxhub',
    { event, sessionId: session, timestamp: new Date().toISOString(), data },
    TEST_SAMPLE_SECRETS,
  );
  const response = await fetch(`${gatewayUrl}${sample.path}`, {
    method: 'POST',
    headers: sample.headers,
    body: sample.body,
  });
  assert.equal(response.status, 200, await response.text());
}

/** An incoming text message as Inbox Hub's `message.received` carries it. */
export function incoming(
  chatId: string,
  messageId: string,
  text: string,
  at = new Date(),
  pushName = 'Cliente de prueba',
): Record<string, unknown> {
  return {
    messageId,
    chatId,
    from: chatId,
    fromMe: false,
    pushName,
    type: 'text',
    content: text,
    timestamp: at.toISOString(),
  };
}

/** Waits until the read model holds the message (so a test knows the pipeline took it). */
export function storedMessage(db: Db, session: string, messageId: string, timeoutMs = 15_000) {
  return eventually(
    async () =>
      (await db.collection<{ _id: string }>(Collections.waMessages).findOne({ _id: `${session}:${messageId}` })) ??
      undefined,
    timeoutMs,
    `message ${messageId} in the read model`,
  );
}

/** The date of `n` seconds after a base time (seeded messages: one second apart). */
const BASE = Date.UTC(2026, 10, 2, 9, 0, 0);
const at = (n: number) => new Date(BASE + n * 1000).toISOString();

/** A chat of `count` messages (alternating in and out), written to the read model in batches: ids `m00001`… oldest first. */
export async function seedThread(db: Db, session: string, chatId: string, count: number): Promise<void> {
  const messages = db.collection<Record<string, unknown> & { _id: string }>(Collections.waMessages);
  for (let i = 0; i < count; i += 1_000) {
    await messages.insertMany(
      Array.from({ length: Math.min(1_000, count - i) }, (_, k) => {
        const n = i + k + 1;
        const messageId = `m${String(n).padStart(5, '0')}`;
        const out = n % 3 === 0;
        return {
          _id: `${session}:${messageId}`,
          _rev: 1,
          session,
          messageId,
          provider: 'inboxhub',
          chatId,
          direction: out ? 'out' : 'in',
          from: out ? undefined : chatId,
          type: 'text',
          text: `Mensaje número ${n}`,
          timestamp: at(n * 60),
          ...(out ? { status: 'read' } : {}),
          _v: {},
        };
      }),
    );
  }
  await db.collection<Record<string, unknown> & { _id: string }>(Collections.waConversations).insertOne({
    _id: `${session}:${chatId}`,
    _rev: 1,
    session,
    chatId,
    kind: 'phone',
    provider: 'inboxhub',
    phone: chatId.split('@')[0],
    name: 'Cliente con historia',
    lastMessage: {
      messageId: `m${String(count).padStart(5, '0')}`,
      type: 'text',
      text: `Mensaje número ${count}`,
      fromMe: count % 3 === 0,
      timestamp: at(count * 60),
    },
    lastInboundAt: at(count * 60),
    unreadCount: 0,
    archived: false,
    updatedAt: at(count * 60),
    _v: {},
  });
  await db.collection<Record<string, unknown> & { _id: string }>(Collections.waSessions).updateOne(
    { _id: session },
    {
      $setOnInsert: {
        _rev: 1,
        provider: 'inboxhub',
        status: 'connected',
        counters: { messagesIn: 0, messagesOut: 0 },
        _v: {},
      },
    },
    { upsert: true },
  );
}

/** `count` contacts of a session in the read model (`Contacto 00001`…, numbers 5190000001…). */
export async function seedContacts(db: Db, session: string, count: number): Promise<void> {
  const contacts = db.collection<Record<string, unknown> & { _id: string }>(Collections.waContacts);
  for (let i = 0; i < count; i += 2_000)
    await contacts.insertMany(
      Array.from({ length: Math.min(2_000, count - i) }, (_, k) => {
        const n = i + k + 1;
        const phone = `5190${String(n).padStart(7, '0')}`;
        return {
          _id: `${session}:${phone}@s.whatsapp.net`,
          _rev: 1,
          session,
          jid: `${phone}@s.whatsapp.net`,
          kind: 'phone',
          phone,
          name: `Contacto ${String(n).padStart(5, '0')}`,
        };
      }),
    );
}

/**
 * A TCP proxy in front of realtime: the page talks to it, so a test can cut the page's connection
 * (every socket closed, new ones refused) and restore it, as a network outage would.
 */
export async function startCutProxy(
  target: string,
): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    upstream.connect(Number(port), hostname, () => {
      client.pipe(upstream).pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    close: async () => {
      down = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The catalogue the page's strings come from (services/realtime/src/inbox/catalogue.ts, as built). */
export const Catalogue = z.object({
  es: z.record(z.string(), z.string()),
  en: z.record(z.string(), z.string()),
});
export type Catalogue = z.infer<typeof Catalogue>;

export async function loadCatalogue(): Promise<Catalogue> {
  const module = (await import(
    new URL('../../../services/realtime/dist/inbox/catalogue.js', import.meta.url).href
  )) as { catalogue: unknown };
  return Catalogue.parse(module.catalogue);
}

/** A Cloud API delivery of an incoming text (Meta's shape and signature) for `phoneNumberId`, sent at `at`. */
export async function cloudWebhook(
  gatewayUrl: string,
  phoneNumberId: string,
  message: { from: string; id: string; text: string; at: Date; name?: string },
): Promise<void> {
  const body = {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
              contacts: [{ profile: { name: message.name ?? 'Cliente Cloud' }, wa_id: message.from }],
              messages: [
                {
                  from: message.from,
                  id: message.id,
                  timestamp: String(Math.floor(message.at.getTime() / 1000)),
                  type: 'text',
                  text: { body: message.text },
                },
              ],
            },
          },
        ],
      },
    ],
  };
  const sample = signSample('whatsapp-cloud', body, TEST_SAMPLE_SECRETS);
  const response = await fetch(`${gatewayUrl}${sample.path}`, {
    method: 'POST',
    headers: sample.headers,
    body: sample.body,
  });
  assert.equal(response.status, 200, await response.text());
}
