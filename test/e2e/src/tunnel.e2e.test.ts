import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { sampleBody, signSample } from '@puente/gateway';
import { startTestGateway, TEST_SECRETS } from '@puente/gateway/testing';
import { FakeGraph, FakeInboxHub } from '@puente/whatsapp/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/bin', import.meta.url));

let bus: Bus;
let gateway: { url: string; close: () => Promise<void> };
let graph: FakeGraph;
let inboxHub: FakeInboxHub;
let home: string;

before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
  graph = await new FakeGraph().start();
  inboxHub = await new FakeInboxHub().start();
  home = mkdtempSync(join(tmpdir(), 'puente-tunnel-'));
});
after(async () => {
  await inboxHub.stop();
  await graph.stop();
  await gateway.close();
  await bus.close();
  rmSync(home, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(home, 'run-'));
  return {
    ...process.env,
    HOME: dir,
    PUENTE_ROOT: dir,
    PUENTE_CONFIG: join(dir, 'config.json'),
    PATH: `${fixtures}:${process.env.PATH}`,
    GATEWAY_PORT: new URL(gateway.url).port,
    NGROK_AUTHTOKEN: 'fake-ngrok-token-not-real',
    META_APP_ID: graph.appId,
    WHATSAPP_APP_SECRET: graph.appSecret,
    WHATSAPP_VERIFY_TOKEN: TEST_SECRETS.WHATSAPP_VERIFY_TOKEN[0]!,
    WHATSAPP_GRAPH_URL: graph.url,
    WHATSAPP_WABA_ID: graph.wabaId,
    WHATSAPP_ACCESS_TOKEN: graph.accessToken,
    INBOXHUB_API_URL: inboxHub.url,
    INBOXHUB_API_KEY: inboxHub.apiKey,
    INBOXHUB_EMAIL: inboxHub.email,
    INBOXHUB_PASSWORD: inboxHub.password,
    INBOXHUB_WEBHOOK_SECRET: TEST_SECRETS.INBOXHUB_WEBHOOK_SECRET[0]!,
    ...extra,
  };
}

interface Cli {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function cli(args: string[], environment: NodeJS.ProcessEnv): Cli {
  const child = spawn(process.execPath, [`${root}cli/bin/puente.js`, ...args], {
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  return { child, output: () => output, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

async function run(args: string[], environment: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const c = cli(args, environment);
  const code = await c.exited;
  return { code, output: c.output() };
}

const urlOf = (output: string) => /tunnel \((?:ngrok|cloudflared)\): (\S+) ->/.exec(output)?.[1];

describe('tunnel and provider registration', () => {
  test("ngrok: the public URL and every provider's webhook URL; --register points Meta and Inbox Hub at it, Ctrl-C undoes it", async () => {
    const session = uniqueName('tun-');
    inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 });
    inboxHub.sessions.get(session)!.webhook = {
      url: 'https://old.example.com/webhooks/inboxhub',
      secret: 'old-secret-value',
      events: ['message.received'],
    };
    const e = env({ INBOXHUB_SESSIONS: session });
    const running = cli(['tunnel', '--via', 'ngrok', '--register', '--undo-on-exit'], e);
    await eventually(
      () => (running.output().includes('Ctrl-C stops the tunnel') ? true : undefined),
      20_000,
      'the tunnel to be up',
    );
    const url = urlOf(running.output())!;
    assert.ok(url, running.output());
    assert.match(running.output(), new RegExp(`WhatsApp Cloud API +${url}/webhooks/whatsapp-cloud`));
    assert.match(running.output(), new RegExp(`Kissflow +${url}/webhooks/kissflow/<dataset id>`));
    // Meta verified the callback through the tunnel; the app is subscribed to the WABA; Inbox Hub points here.
    assert.deepEqual(graph.subscription, {
      callbackUrl: `${url}/webhooks/whatsapp-cloud`,
      verifyToken: TEST_SECRETS.WHATSAPP_VERIFY_TOKEN[0],
      fields: ['messages'],
    });
    assert.ok(graph.wabaApps.has(graph.appId));
    assert.equal(inboxHub.sessions.get(session)!.webhook?.url, `${url}/webhooks/inboxhub`);
    assert.doesNotMatch(
      running.output(),
      /test-inboxhub-secret|test-verify-token|fake-graph-access-token|fake-meta-app-secret/,
      'no secret printed',
    );
    // A delivery through the tunnel reaches the gateway.
    const sample = signSample(
      'inboxhub',
      { ...(sampleBody('inboxhub', 1) as object), sessionId: session },
      { inboxhub: TEST_SECRETS.INBOXHUB_WEBHOOK_SECRET[0]! },
    );
    assert.equal(
      (await fetch(`${url}${sample.path}`, { method: 'POST', headers: sample.headers, body: sample.body })).status,
      200,
    );
    const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as {
      status: string;
      providers: Record<string, { lastDeliveryAt: string | null; secret: string }>;
    };
    assert.equal(ready.status, 'ok');
    assert.ok(ready.providers.inboxhub!.lastDeliveryAt, "the gateway's readiness detail shows the last delivery");
    assert.equal(ready.providers.inboxhub!.secret, 'configured');
    const status = await run(['tunnel', 'status'], e);
    assert.equal(status.code, 0);
    assert.match(
      status.output,
      new RegExp(
        `tunnel \\(ngrok\\): ${url} -> http://127.0.0.1:\\d+, pid \\d+, up 0 min, registered with Meta, Inbox Hub ${session}`,
      ),
    );
    const check = await run(['providers', 'check'], e);
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /whatsapp-cloud +credentials ok .*app subscribed to the WABA/);
    assert.match(
      check.output,
      new RegExp(`inboxhub +credentials ok[\\s\\S]*webhook +ok +${session}: ${url}/webhooks/inboxhub`),
    );
    assert.match(check.output, /last delivery 20\d\d-/);
    const logs = await run(['tunnel', 'logs'], e);
    assert.match(logs.output, /"msg":"started tunnel"/);
    running.child.kill('SIGINT');
    assert.equal(await running.exited, 0, running.output());
    assert.match(running.output(), /Meta: webhook subscription removed, app unsubscribed from the WABA/);
    assert.match(running.output(), /Inbox Hub .*: webhook back to https:\/\/old\.example\.com\/webhooks\/inboxhub/);
    assert.equal(graph.subscription, undefined);
    assert.ok(!graph.wabaApps.has(graph.appId));
    assert.equal(inboxHub.sessions.get(session)!.webhook?.url, 'https://old.example.com/webhooks/inboxhub');
    assert.equal((await run(['tunnel', 'status'], e)).code, 1, 'not running any more');
    // Pointed elsewhere now: providers check fails.
    const stale = await run(['providers', 'check', '--url', url], e);
    assert.equal(stale.code, 1);
    assert.match(stale.output, /inboxhub[\s\S]*webhook +FAIL .*points at https:\/\/old\.example\.com/);
    assert.match(stale.output, /whatsapp-cloud[\s\S]*webhook +FAIL +no webhook registered/);
  });

  test('cloudflared: the quick tunnel URL from its box; tunnel config keeps credentials in a private file', async () => {
    const e = env();
    const running = cli(['tunnel', '--via', 'cloudflared'], e);
    await eventually(
      () => (running.output().includes('Ctrl-C stops the tunnel') ? true : undefined),
      20_000,
      'the tunnel to be up',
    );
    const url = urlOf(running.output())!;
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the tunnel forwards to the gateway');
    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
    const saved = await run(
      [
        'tunnel',
        'config',
        '--ngrok-authtoken',
        'secret-ngrok-token',
        '--ngrok-domain',
        'puente-ana.ngrok.app',
        '--via',
        'ngrok',
      ],
      e,
    );
    assert.equal(saved.code, 0, saved.output);
    assert.match(saved.output, /via ngrok, ngrok auth token set, domain puente-ana\.ngrok\.app/);
    assert.doesNotMatch(saved.output, /secret-ngrok-token/);
    assert.equal(statSync(e.PUENTE_CONFIG!).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(e.PUENTE_CONFIG!, 'utf8')).tunnel.ngrok.authtoken, 'secret-ngrok-token');
  });

  test('the URLs the real agents print are the ones reported', async () => {
    for (const [via, variable, url] of [
      ['cloudflared', 'FAKE_CLOUDFLARED_URL', 'https://seasonal-deck-organisms-sf.trycloudflare.com'],
      ['ngrok', 'FAKE_NGROK_URL', 'https://8f1c-203-0-113-7.ngrok-free.app'],
    ] as const) {
      const running = cli(['tunnel', '--via', via], env({ [variable]: url }));
      await eventually(
        () => (running.output().includes('Ctrl-C stops the tunnel') ? true : undefined),
        20_000,
        `${via} to be up`,
      );
      assert.equal(urlOf(running.output()), url);
      running.child.kill('SIGINT');
      assert.equal(await running.exited, 0);
    }
  });

  test('every failure is one clear line: no agent, no token, a refused token, an agent that cannot connect or dies, a callback Meta cannot verify', async () => {
    const noAgent = await run(['tunnel', '--via', 'ngrok'], env({ PATH: '/usr/bin:/bin' }));
    assert.equal(noAgent.code, 1);
    assert.match(
      noAgent.output,
      /^puente: ngrok is not installed: get it from https:\/\/ngrok\.com\/download \(or use --via cloudflared\)\n$/,
    );
    const noCloudflared = await run(['tunnel', '--via', 'cloudflared'], env({ PATH: '/usr/bin:/bin' }));
    assert.match(noCloudflared.output, /^puente: cloudflared is not installed/);
    const noToken = await run(['tunnel', '--via', 'ngrok'], env({ NGROK_AUTHTOKEN: '' }));
    assert.equal(noToken.code, 1);
    assert.match(
      noToken.output,
      /^puente: ngrok needs an auth token: run `npx puente tunnel config --ngrok-authtoken <token>`/,
    );
    const refused = await run(['tunnel', '--via', 'ngrok'], env({ FAKE_NGROK: 'reject-token' }));
    assert.equal(refused.code, 1);
    assert.match(refused.output, /puente: ngrok refused its auth token: .*ERR_NGROK_4018/);
    const offline = await run(['tunnel', '--via', 'cloudflared'], env({ FAKE_CLOUDFLARED: 'fail' }));
    assert.equal(offline.code, 1);
    assert.match(
      offline.output,
      /puente: cloudflared exited \(code 1\) before reporting a URL: Failed to create new quick Tunnel/,
    );
    const dies = await run(['tunnel', '--via', 'ngrok'], env({ FAKE_NGROK: 'die-after-start' }));
    assert.equal(dies.code, 1);
    assert.match(dies.output, /puente: the ngrok agent exited: the session was closed by the server/);
    const badVerify = cli(
      ['tunnel', '--via', 'ngrok', '--register'],
      env({ WHATSAPP_VERIFY_TOKEN: 'not-the-gateways-token' }),
    );
    await eventually(
      () => (badVerify.output().includes('Ctrl-C stops the tunnel') ? true : undefined),
      20_000,
      'the tunnel to be up',
    );
    assert.match(
      badVerify.output(),
      /Meta: FAILED: Meta answered 400 \(#2200\): .*Callback verification failed.*\(is the gateway running/,
    );
    assert.match(badVerify.output(), /Inbox Hub: skipped \(name the sessions/);
    badVerify.child.kill('SIGINT');
    assert.equal(await badVerify.exited, 0);
    assert.equal((await run(['tunnel', '--via', 'carrier-pigeon'], env())).code, 2);
  });
});
