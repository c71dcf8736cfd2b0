#!/usr/bin/env node
import { sendSample, UsageError } from './sendSample.js';

/** `npx puente <command>`: the operator CLI. Every failure exits non-zero with a one-line reason. */
const USAGE = `usage: npx puente <command>
  send-sample <kissflow|inboxhub|evolution|waha|whatsapp-cloud> [--count N]
      sends correctly signed sample webhooks to the gateway (GATEWAY_URL, default http://127.0.0.1:8080)`;

const [command, ...args] = process.argv.slice(2);
const out = (line: string) => process.stdout.write(`${line}\n`);
try {
  switch (command) {
    case 'send-sample':
      await sendSample(args, process.env, out);
      break;
    case undefined:
    case 'help':
    case '--help':
      out(USAGE);
      break;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
} catch (error) {
  process.stderr.write(`puente: ${(error as Error).message}\n`);
  if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
}
