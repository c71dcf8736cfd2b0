import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { devDashboardToken, DevSecrets } from '@puente/runtime';
import { startStack } from './stack.js';
import { ensureGlymsDemo } from './glyms.js';
import { preferredPort, StackError } from './processes.js';
import { SERVICES, spawnService, stopService, waitReady, type RunningServiceProcess } from './services.js';

/**
 * `npm start`: the whole hub on this machine. Ensures NATS, a MongoDB-wire server and PostgreSQL
 * under `.data/` (or uses NATS_URL, MONGO_URL, GLYMS_DATABASE_URL), creates the demo Glyms database,
 * starts the five services, prints their URLs and the dev secrets, and stops everything on Ctrl-C.
 */
const root = resolve(process.env.PUENTE_ROOT ?? process.cwd());
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  say('puente: starting the local stack (first run installs NATS, FerretDB and PostgreSQL; later runs take seconds)');
  const stack = await startStack({
    dir: join(root, '.data'),
    mode: 'dev',
    log: (line) => say(`stack         | ${line}`),
  });
  const services: RunningServiceProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      say('puente: stopping services');
      rmSync(join(root, '.data', 'services.json'), { force: true });
      await Promise.all(services.map((s) => stopService(s)));
      say('puente: stopping the local stack');
      await stack.stop();
      say('puente: stopped');
      process.exit(code);
    })();
    return stopping;
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    if (stack.origin.postgres && process.env.GLYMS_DATABASE_URL === undefined) {
      const seeded = await ensureGlymsDemo(stack.glymsUrl!);
      say(`stack         | demo Glyms database ready: ${seeded.clientes} clientes, ${seeded.servicios} servicios`);
    }
    const secrets = Object.fromEntries(Object.entries(DevSecrets).filter(([name]) => process.env[name] === undefined));
    const base: NodeJS.ProcessEnv = {
      ...process.env,
      ...secrets,
      ...stack.env(),
      NODE_ENV: process.env.NODE_ENV ?? 'development',
    };
    for (const service of SERVICES) {
      const port = await preferredPort(
        Number(
          process.env[
            service.portVariable === 'HEALTH_PORT'
              ? `${service.name.toUpperCase().replace('-', '_')}_HEALTH_PORT`
              : service.portVariable
          ] ?? service.port,
        ),
      );
      // Realtime forwards the inbox's commands to this gateway, whichever port it got.
      const gateway = services.find((s) => s.name === 'gateway');
      const forwarding =
        service.name === 'realtime' && gateway && process.env.REALTIME_GATEWAY_URL === undefined
          ? { REALTIME_GATEWAY_URL: `http://127.0.0.1:${gateway.port}` }
          : {};
      services.push(
        spawnService(
          root,
          service.name,
          port,
          { ...base, ...forwarding, [service.portVariable]: String(port) },
          process.stdout,
        ),
      );
    }
    await Promise.all(services.map((s) => waitReady(s)));
    for (const s of services) {
      void s.exited.then((code) => {
        if (!stopping) {
          say(`puente: ${s.name} exited unexpectedly (code ${code}); stopping everything`);
          void stop(1);
        }
      });
    }
    const port = (name: string) => services.find((s) => s.name === name)!.port;
    // Where each service listens, for `puente status` and the other CLI commands.
    writeFileSync(
      join(root, '.data', 'services.json'),
      `${JSON.stringify(Object.fromEntries(services.map((s) => [s.name, { port: s.port, pid: s.child.pid }])), null, 2)}\n`,
    );
    const realtimeSecret = base.REALTIME_JWT_SECRET?.split(',')[0]?.trim();
    const dashboardToken =
      realtimeSecret === DevSecrets.REALTIME_JWT_SECRET ? `#token=${devDashboardToken(realtimeSecret)}` : '';
    say('');
    say('Puente is running. Ctrl-C stops everything.');
    say(`  gateway     http://127.0.0.1:${port('gateway')}/webhooks/<provider>   (health: /healthz, /readyz)`);
    say(`  realtime    http://127.0.0.1:${port('realtime')}/${dashboardToken}`);
    say(
      `              (the live dashboard${dashboardToken ? ', with a 12-hour development token' : ''}) and ws://127.0.0.1:${port('realtime')}/ws`,
    );
    say(`  inbox       http://127.0.0.1:${port('realtime')}/inbox${dashboardToken}`);
    for (const name of ['kissflow-sync', 'whatsapp', 'bitrix-sync'])
      say(`  ${name.padEnd(11)} http://127.0.0.1:${port(name)}/readyz`);
    say(`  NATS        ${stack.natsUrl}   MongoDB ${stack.mongoUrl}   Glyms ${stack.glymsUrl}`);
    say('');
    say('Development secrets (refused when NODE_ENV=production):');
    for (const [name, value] of Object.entries(secrets)) say(`  ${name}=${value}`);
    say('');
  } catch (error) {
    say(`puente: ${error instanceof StackError ? error.message : (error as Error).message}`);
    await stop(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`puente: ${error instanceof StackError ? error.message : (error as Error).stack}\n`);
  process.exit(1);
});
