import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { Collections, createEvent, type DomainEvent, type WhatsAppProvider } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { contentHash } from '@puente/media';
import type { OutgoingMedia } from '../commands/outgoingMedia.js';
import { eventually } from '@puente/bus/testing';
import type { MessageDoc } from '../messages/messagesProjection.js';

/**
 * The provider reports a status for a message sent by a command: publishes it, waits for the provider's
 * document to reach it, checks the command's pending document became its alias, and returns the
 * provider's document (for the caller's own checks of its content).
 */
export async function reportSentStatus(
  bus: Bus,
  db: Db,
  report: {
    session: string;
    provider: WhatsAppProvider;
    commandId: string;
    messageId: string;
    status: 'delivered' | 'read';
    chatId?: string;
  },
): Promise<MessageDoc> {
  const { session, provider, commandId, messageId, status } = report;
  await bus.publishEvent(
    createEvent(
      'whatsapp.message.status.v1',
      {
        session,
        provider,
        messageId,
        ...(report.chatId ? { chatId: report.chatId } : {}),
        status,
        timestamp: new Date().toISOString(),
      },
      { source: 'urn:test' },
    ) as DomainEvent,
  );
  const messages = db.collection<MessageDoc & { _id: string }>(Collections.waMessages);
  const message = await eventually(
    async () => {
      const doc = await messages.findOne({ _id: `${session}:${messageId}` });
      return doc?.status === status ? doc : undefined;
    },
    10_000,
    `the message to be ${status}`,
  );
  const pending = await messages.findOne({ _id: `${session}:${commandId}` });
  assert.deepEqual([pending?._deleted, pending?.aliasOf], [true, `${session}:${messageId}`]);
  return message;
}

/** Media with its bytes in hand, as the send handler gives it to a provider client (`hash` its SHA-256). */
export function outgoingMediaOf(
  type: OutgoingMedia['type'],
  data: Buffer,
  mimeType: string,
  fileName?: string,
): OutgoingMedia {
  return { type, data, mimeType, ...(fileName ? { fileName } : {}), hash: contentHash(data) };
}
