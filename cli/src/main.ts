#!/usr/bin/env node
import { providers } from '@puente/gateway';
import { sendSample, UsageError } from './sendSample.js';
import { whatsappRegisterWebhook, whatsappSync } from './whatsapp.js';
import { whatsappSend } from './whatsappSend.js';
import { kissflowBackfill } from './kissflow.js';
import { revokeToken, token } from './token.js';
import { tunnel } from './tunnel.js';
import { providersCheck } from './providers.js';
import { dlq, webhooks } from './ops.js';
import { status } from './status.js';
import { replay, REPLAYABLE } from './replay.js';
import { bitrix } from './bitrix.js';

/** `npx puente <command>`: the operator CLI. Every failure exits non-zero with a one-line reason. */
const USAGE = `usage: npx puente <command>
  send-sample <${providers.map((p) => p.name).join('|')}> [--count N]
      sends correctly signed sample webhooks to the gateway (GATEWAY_URL, default http://127.0.0.1:8080)
  kissflow backfill --dataset <id> [--view <id>] [--reconcile]
      publishes every row of a Kissflow dataset (KISSFLOW_* variables) as an upserted event, resuming a run that
      stopped; --reconcile also finds rows that no longer exist and publishes their deletes
  tunnel [--via ngrok|cloudflared] [--port 8080] [--register [--session a,b] [--undo-on-exit]]
      exposes the gateway through your ngrok or cloudflared agent, prints each provider's webhook URL,
      and with --register points Meta and Inbox Hub at it; Ctrl-C stops it
  tunnel status | tunnel logs [--follow] | tunnel config [--ngrok-authtoken T] [--ngrok-domain D] [--cloudflared-token T --cloudflared-hostname H] [--via V]
  providers check [--url <public gateway url>] [--session a,b] [--dataset <id>]
      whether each provider's credentials work, its webhook points here, and when it last delivered
  replay <${REPLAYABLE.map((r) => r.name).join('|')}> [--from <seq>]
      rebuilds a read model from EVENTS beside the live one and swaps it in, document by document
  status
      one screen: every service's readiness, consumer lags, dead letters, CDC slots, last sync and delivery per source
  dlq list [--consumer C] [--since 2h] | dlq show <id> | dlq retry (--id N | --all [--consumer C]) | dlq purge [--consumer C]
      dead letters: inspect them, send them back to the consumer that gave up, or drop them
  webhooks list [--provider P] [--dataset D] [--since T] [--until T] | webhooks show <seq> | webhooks redeliver (--seq N | --since T [--until T] [--provider P] [--dataset D])
      the verified bodies kept in WEBHOOKS_RAW; redeliver normalizes them again (idempotent)
  token --channels <patterns> [--ttl 12h] [--sub name] [--send <sessions>|*] [--roles operator]
      mints an access token (REALTIME_JWT_SECRET) for realtime and, with --send, the gateway's command API;
      prints the token (stdout) and its id (stderr)
  token revoke <token id | subject> [--sub]
      revokes one token, or every token of a subject issued until now; refused within seconds everywhere
  bitrix auth-url | bitrix auth --code <code>
      first-time OAuth authorization of the Bitrix24 app (BITRIX_PORTAL_URL, BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET);
      the tokens go to the bus's key-value store, never to a file
  bitrix price-types | bitrix directory-items <ENTITY_ID>
      Bitrix24 price types, and the items of a CRM directory (COMPANY_TYPE, INDUSTRY, EMPLOYEES), with their ids
  bitrix sync services [--dry-run]
      pushes the ERP's services (BITRIX_CATALOG_QUERY, BITRIX_CATALOG_MAPPING) to the Bitrix24 catalog with prices:
      prints one line per product created (+), changed (~) or deactivated (-); --dry-run writes nothing
  bitrix sync companies | bitrix sync all [--dry-run]
      hands every current customer to the running bitrix-sync, which writes each company again (all: services too)
  whatsapp sync --session <id> [--provider inboxhub|evolution|waha]
      full sync of contacts, chats and recent messages from Inbox Hub (INBOXHUB_API_* variables), Evolution
      API (EVOLUTION_API_URL, EVOLUTION_API_KEY) or WAHA (WAHA_API_URL, WAHA_API_KEY), as imported events
  whatsapp send --session <id> --to <number or JID> [--text <t>] [--file <path> [--type image|video|audio|document|sticker]] [--wait [--timeout <s>]]
      sends a message; a --file goes to the media store (MONGO_URL) and the whatsapp service uploads it to the
      provider; prints the command id, and with --wait its outcome (exit 1 unless sent)
  whatsapp register-webhook --session <id> [--session-db-id <n>] --url <public gateway url>
      points the session's Inbox Hub webhook at <url>/webhooks/inboxhub, signed with INBOXHUB_WEBHOOK_SECRET
  whatsapp register-webhook --account --url <public gateway url> [--name <name>] [--events a,b]
      registers an account-wide Inbox Hub webhook (all eleven events by default) unless one to that URL exists`;

const [command, ...args] = process.argv.slice(2);
const out = (line: string) => process.stdout.write(`${line}\n`);
try {
  switch (command) {
    case 'send-sample':
      await sendSample(args, process.env, out);
      break;
    case 'tunnel': {
      const stop = new Promise((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.exitCode = await tunnel(args, process.env, out, stop);
      process.exit();
      break;
    }
    case 'providers': {
      const [sub, ...rest] = args;
      if (sub !== 'check') throw new UsageError(`unknown providers command ${sub ?? '(none)'}: check`);
      process.exitCode = (await providersCheck(rest, process.env, out)).code;
      break;
    }
    case 'replay':
      process.exitCode = await replay(args, process.env, out);
      break;
    case 'status':
      process.exitCode = await status(process.env, out);
      break;
    case 'dlq':
      process.exitCode = await dlq(args, process.env, out);
      break;
    case 'webhooks':
      process.exitCode = await webhooks(args, process.env, out);
      break;
    case 'token':
      if (args[0] === 'revoke') await revokeToken(args.slice(1), process.env, out);
      else token(args, process.env, out, (line) => process.stderr.write(`${line}\n`));
      break;
    case 'kissflow': {
      const [sub, ...rest] = args;
      if (sub === 'backfill') await kissflowBackfill(rest, process.env, out);
      else throw new UsageError(`unknown kissflow command ${sub ?? '(none)'}: backfill`);
      break;
    }
    case 'bitrix':
      // `bitrix sync` is dispatched in bitrix.ts too.
      process.exitCode = await bitrix(args, process.env, out);
      break;
    case 'whatsapp': {
      const [sub, ...rest] = args;
      if (sub === 'sync') await whatsappSync(rest, process.env, out);
      else if (sub === 'send') process.exitCode = await whatsappSend(rest, process.env, out);
      else if (sub === 'register-webhook') await whatsappRegisterWebhook(rest, process.env, out);
      else throw new UsageError(`unknown whatsapp command ${sub ?? '(none)'}: sync, send or register-webhook`);
      break;
    }
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
