import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Collections, createEvent, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { contentHash } from '@puente/media';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp, type WhatsAppApp } from '@puente/whatsapp';
import { FakeWaha } from '@puente/whatsapp/testing';
import { UsageError } from './sendSample.js';
import { whatsappSend } from './whatsappSend.js';

/*
 * `puente whatsapp send --file`: the file goes to the media store, the command names its hash, and the
 * whatsapp service (running here against a fake WAHA) uploads it; `--wait` prints what became of it.
 */
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let waha: FakeWaha;
let running: { app: WhatsAppApp; stop: () => Promise<void> };
let dir: string;
let env: NodeJS.ProcessEnv;
const session = uniqueName('cli-send-');

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  waha = await new FakeWaha({ sessions: { [session]: 'WORKING' } }).start();
  dir = await mkdtemp(join(tmpdir(), 'puente-send-'));
  const mongo = new URL(process.env.MONGO_URL!);
  mongo.pathname = `/${database.db.databaseName}`;
  env = { ...process.env, MONGO_URL: mongo.toString(), MEDIA_MAX_BYTES: '65536' };
  await bus.publishEvent(
    createEvent(
      'whatsapp.session.status.v1',
      { session, provider: 'waha', status: 'connected', timestamp: new Date(Date.now() - 7_200_000).toISOString() },
      { source: 'urn:test' },
    ) as DomainEvent,
  );
  running = await startWhatsApp({
    bus,
    db: database.db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ WHATSAPP_SESSIONS: session, WAHA_API_URL: waha.url, WAHA_API_KEY: waha.apiKey }),
  });
  await eventually(
    async () =>
      (await database.db.collection(Collections.waSessions).findOne({ _id: session as never })) ? true : undefined,
    10_000,
    'the session in the read model',
  );
});
after(async () => {
  await running?.stop();
  await waha.stop();
  await rm(dir, { recursive: true, force: true });
  await database.drop();
  await bus.close();
});

describe('puente whatsapp send', () => {
  test('--file --wait: stored, uploaded by the service, sent; prints the command id and the provider id', async () => {
    const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(5_000)]);
    const path = join(dir, 'factura.pdf');
    await writeFile(path, bytes);
    const lines: string[] = [];
    const code = await whatsappSend(
      [
        '--session',
        session,
        '--to',
        '+34612345678',
        '--text',
        'su factura',
        '--file',
        path,
        '--wait',
        '--timeout',
        '15',
      ],
      env,
      (line) => lines.push(line),
    );
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines[0] ?? '', /^command [0-9a-f-]{36} \(document factura\.pdf, media [0-9a-f]{12}…\)$/);
    const [send] = waha.sends.filter((s) => s.session === session);
    assert.equal(lines[1], `sent: ${send!.messageId}`);
    assert.equal(send!.path, '/api/sendFile');
    assert.deepEqual(waha.files.get(send!.messageId), { bytes, mimetype: 'application/pdf', fileName: 'factura.pdf' });
    assert.ok(await running.app.media.stat(contentHash(bytes)));
  });

  test('a file over MEDIA_MAX_BYTES fails in one line before anything is published', async () => {
    const path = join(dir, 'big.jpg');
    await writeFile(path, randomBytes(70_000));
    const sends = waha.sends.length;
    await assert.rejects(
      whatsappSend(['--session', session, '--to', '34612345678', '--file', path], env, () => undefined),
      (error: Error) =>
        /big\.jpg: .*over the cap of 65536 \(TOO_LARGE\)$/.test(error.message) && !error.message.includes('\n'),
    );
    assert.equal(waha.sends.length, sends);
  });

  test('--wait on a send that fails prints the reason and exits 1', async () => {
    const path = join(dir, 'anim.webp');
    await writeFile(path, randomBytes(1_000));
    const lines: string[] = [];
    // WAHA has no sticker call in Puente: the service refuses it, and says so.
    const code = await whatsappSend(
      ['--session', session, '--to', '34612345678', '--file', path, '--type', 'sticker', '--wait', '--timeout', '15'],
      env,
      (line) => lines.push(line),
    );
    assert.equal(code, 1);
    assert.match(lines[1] ?? '', /^failed: UNSUPPORTED_MEDIA stickers are not sent through WAHA$/);
  });

  test('usage errors: nothing to send, an unknown --type', async () => {
    await assert.rejects(
      whatsappSend(['--session', session, '--to', '34612345678'], env, () => undefined),
      UsageError,
    );
    await assert.rejects(
      whatsappSend(['--session', session, '--to', '1', '--file', 'x', '--type', 'gif'], env, () => undefined),
      UsageError,
    );
  });
});
