import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { MongoClient } from 'mongodb';
import {
  Collections,
  createEvent,
  messageTypeOfMime,
  mimeOfFileName,
  type DomainEvent,
  type SendMessageV1,
} from '@puente/contracts';
import { MediaRejectedError, MediaStore } from '@puente/media';
import { loadConfig, mongoDatabaseName } from '@puente/runtime';
import { Config, type CommandDoc } from '@puente/whatsapp';
import { UsageError } from './sendSample.js';
import { connectBus, flag, mongoUrl, required } from './common.js';

type MediaType = NonNullable<SendMessageV1['media']>['type'];
const MEDIA_TYPES: readonly MediaType[] = ['image', 'video', 'audio', 'document', 'sticker'];

/** A file's kind from its MIME type (`image/…` an image, anything not image, video or audio a document). */
function mediaTypeOf(mime: string): MediaType {
  const type = messageTypeOfMime(mime);
  return (MEDIA_TYPES as readonly string[]).includes(type) ? (type as MediaType) : 'document';
}

/**
 * `puente whatsapp send --session <s> --to <number or JID> [--text <t>] [--file <path> [--type <kind>]]
 * [--wait [--timeout <s>]]`: puts a local file in the media store (MONGO_URL, the whatsapp service's
 * MEDIA_MAX_BYTES and MEDIA_BUDGET_BYTES), publishes `whatsapp.send_message.v1` with its hash (the service
 * uploads it to the provider), prints the command id and, with `--wait`, what became of it. Returns the
 * exit code: 0 sent (or published, without `--wait`), 1 failed, unknown or not finished in time.
 */
export async function whatsappSend(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<number> {
  const session = required(args, '--session', 'the session that sends');
  const to = required(args, '--to', 'the recipient: a number in international format or a JID');
  const text = flag(args, '--text');
  const path = flag(args, '--file');
  const typeFlag = flag(args, '--type');
  const wait = args.includes('--wait');
  const timeoutSeconds = Number(flag(args, '--timeout') ?? 60);
  if (text === undefined && path === undefined) throw new UsageError('--text or --file is required');
  if (typeFlag !== undefined && !(MEDIA_TYPES as readonly string[]).includes(typeFlag))
    throw new UsageError(`--type must be one of ${MEDIA_TYPES.join(', ')}`);
  if (typeFlag !== undefined && path === undefined) throw new UsageError('--type goes with --file');
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout is in seconds, above 0');
  const config = loadConfig(Config, env);

  const url = await mongoUrl(env);
  const mongo = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    const db = mongo.db(mongoDatabaseName(url));
    let media: SendMessageV1['media'];
    if (path !== undefined) {
      const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
        throw new Error(`${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
      });
      const fileName = basename(path);
      const mimeType = mimeOfFileName(fileName) ?? 'application/octet-stream';
      const store = new MediaStore(db, {
        maxItemBytes: config.MEDIA_MAX_BYTES,
        budgetBytes: config.MEDIA_BUDGET_BYTES,
      });
      const stored = await store.put(bytes, { contentType: mimeType, fileName }).catch((error: unknown) => {
        if (error instanceof MediaRejectedError) throw new Error(`${path}: ${error.message} (${error.code})`);
        throw error;
      });
      media = {
        type: (typeFlag as MediaType | undefined) ?? mediaTypeOf(mimeType),
        hash: stored.media.hash,
        mimeType,
        fileName,
      };
    }
    const commandId = randomUUID();
    const now = new Date().toISOString();
    const command = createEvent(
      'whatsapp.send_message.v1',
      {
        commandId,
        session,
        to,
        ...(text !== undefined ? { text } : {}),
        ...(media ? { media } : {}),
        requestedAt: now,
      },
      { source: 'urn:puente:cli', id: commandId, time: now },
    ) as DomainEvent;
    const bus = await connectBus(env);
    try {
      await bus.ensureStreams();
      await bus.publishEvent(command, { msgId: `cmd:${commandId}` });
    } finally {
      await bus.close();
    }
    out(`command ${commandId}${media ? ` (${media.type} ${media.fileName}, media ${media.hash!.slice(0, 12)}…)` : ''}`);
    if (!wait) return 0;

    const commands = db.collection<CommandDoc & { _id: string }>(Collections.commands);
    const deadline = Date.now() + timeoutSeconds * 1_000;
    for (;;) {
      const doc = await commands.findOne({ _id: commandId });
      if (doc && doc.status !== 'queued') {
        if (doc.status === 'sent') {
          out(`sent: ${doc.providerMessageId ?? '(no provider id)'}`);
          return 0;
        }
        out(`${doc.status}: ${doc.error ? `${doc.error.code} ${doc.error.message}` : 'no reason given'}`);
        return 1;
      }
      if (Date.now() > deadline) {
        out(`no outcome within ${timeoutSeconds} s (is the whatsapp service running?)`);
        return 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await mongo.close();
  }
}
