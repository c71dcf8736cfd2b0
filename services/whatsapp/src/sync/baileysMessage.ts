import { baileysContent, toIsoTime } from '@puente/contracts';
import type { BaileysWAMessage } from '../providers/inboxhubApiTypes.js';
import type { SyncMessage } from './source.js';

/**
 * A message in Baileys' `WAMessage` shape (as Inbox Hub and Evolution API list them) as an `imported`
 * one: its id is `key.id`, the id the Baileys gateways' webhooks carry. Undefined without a readable time.
 */
export function baileysMessage(m: BaileysWAMessage): SyncMessage | undefined {
  const timestamp = toIsoTime(m.messageTimestamp);
  if (!timestamp) return undefined;
  const fromMe = m.key.fromMe === true;
  const from = m.key.participant ?? (fromMe ? undefined : m.key.remoteJid);
  return {
    messageId: m.key.id,
    chatId: m.key.remoteJid,
    ...(m.key.remoteJidAlt ? { chatAlt: m.key.remoteJidAlt } : {}),
    ...(from ? { from } : {}),
    fromMe,
    ...(m.pushName ? { pushName: m.pushName } : {}),
    ...baileysContent(m.message ?? null),
    timestamp,
  };
}
