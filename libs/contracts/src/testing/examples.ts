import type { EventData, EventType } from '../events/registry.js';

const at = '2025-10-15T10:30:00.000Z';
const session = 'ventas';
const chatId = '34612345678@s.whatsapp.net';
const glymsRow = {
  schema: 'public', table: 'cliente', key: { id_cliente: 1 },
  row: { id_cliente: 1, razon_social: 'Comercial Andina S.A.C.', ruc: '20512345678', activo: true },
  position: '0/16B3748', commitTime: at, cdc: 'logical' as const,
};

/**
 * One realistic example of every event type. Typed against the registry, so a new type does not
 * compile until it has an example here; tests validate each against its schema and JSON Schema.
 */
export const EventExamples: { [T in EventType]: EventData<T> } = {
  'kissflow.record.upserted.v1': {
    dataset: 'DS_Documentos_Cliente', rowId: 'Pk8dLs9_2Xq', origin: 'webhook', modifiedAt: '2025-10-15T10:30:01Z',
    fields: { Name: 'Contrato marco', 'Cliente.RUC': '20512345678', $estado: 'Aprobado', Monto: 1250.5 },
  },
  'kissflow.record.deleted.v1': { dataset: 'DS_Documentos_Cliente', rowId: 'Pk8dLs9_2Xq', detectedAt: at },
  'whatsapp.message.received.v1': {
    session, provider: 'inboxhub', messageId: '3EB0C767D26A1B2E5F8A', chatId, from: chatId, fromMe: false,
    pushName: 'Juan Pérez', type: 'text', text: 'Hola, ¿cómo estás? 👋', timestamp: at,
  },
  'whatsapp.message.sent.v1': { session, provider: 'cloud-api', messageId: 'wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBI', chatId, fromMe: true, type: 'image', media: { id: '1013859600285441', mimeType: 'image/jpeg', caption: 'Factura' }, timestamp: at },
  'whatsapp.message.imported.v1': { session, provider: 'inboxhub', messageId: '3EB0A1B2C3D4E5F6', chatId: '120363025246125486@g.us', from: '34699999999@s.whatsapp.net', fromMe: false, type: 'location', location: { latitude: -12.0464, longitude: -77.0428, name: 'Lima' }, timestamp: at },
  'whatsapp.message.status.v1': { session, provider: 'cloud-api', messageId: 'wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBI', chatId, status: 'failed', timestamp: at, error: { code: '131047', message: 'Re-engagement message' } },
  'whatsapp.message.send_requested.v1': { session, provider: 'inboxhub', commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e0f', chatId, type: 'text', text: 'Su pedido está listo ✅', requestedAt: at },
  'whatsapp.session.status.v1': { session, provider: 'inboxhub', status: 'connected', phone: '34612345678', timestamp: at },
  'whatsapp.session.qr.v1': { session, provider: 'evolution', qr: '2@y8F3kd0Q8Jx...,dGVzdA==', timestamp: at },
  'whatsapp.session.sync.v1': { session, provider: 'inboxhub', syncId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e13', phase: 'progress', counts: { contacts: 120, chats: 20, messages: 350 }, timestamp: at },
  'whatsapp.contact.updated.v1': { session, provider: 'waha', jid: '228139525189761@lid', name: 'María López', phone: '34677777777', timestamp: at },
  'whatsapp.contact.imported.v1': { session, provider: 'inboxhub', jid: chatId, name: 'Juan Pérez', timestamp: at },
  'whatsapp.chat.archived.v1': { session, provider: 'inboxhub', chatId, timestamp: at },
  'whatsapp.chat.unarchived.v1': { session, provider: 'inboxhub', chatId, timestamp: at },
  'whatsapp.chat.imported.v1': { session, provider: 'inboxhub', chatId, name: 'Juan Pérez', unreadCount: 2, archived: false, lastMessageAt: at, timestamp: at },
  'whatsapp.command.sent.v1': { session, commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e0f', kind: 'send_message', providerMessageId: '3EB0C767D26A1B2E5F8B', chatId, message: { type: 'text', text: 'Su pedido está listo ✅', requestedAt: at }, at },
  'whatsapp.command.failed.v1': { session, commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e10', kind: 'send_message', error: { code: 'SESSION_DISCONNECTED', message: 'the session is not connected' }, at },
  'whatsapp.command.unknown.v1': { session, commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e11', kind: 'send_message', error: { code: 'RESULT_LOST', message: 'the provider did not answer in time' }, at },
  'whatsapp.send_message.v1': { commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e0f', session, to: '34612345678', text: 'Su pedido está listo ✅', idempotencyKey: 'order-8812-ready', requestedAt: at },
  'whatsapp.mark_read.v1': { commandId: '018f2f5e-7d1c-7b4a-9c3e-5a6b7c8d9e12', session, chatId, requestedAt: at },
  'glyms.row.created.v1': { ...glymsRow, op: 'created' },
  'glyms.row.updated.v1': { ...glymsRow, op: 'updated', before: { id_cliente: 1 } },
  'glyms.row.deleted.v1': { ...glymsRow, op: 'deleted', row: undefined, before: { id_cliente: 1 } },
  'bitrix.entity.synced.v1': { entity: 'company', sourceKey: '1', bitrixId: '4521', action: 'updated', multiValueIds: { PHONE: ['9871'], EMAIL: ['9872'] }, at },
  'bitrix.entity.failed.v1': { entity: 'product', sourceKey: 'SRV-002', error: { code: 'QUERY_LIMIT_EXCEEDED', message: 'Too many requests' }, retryable: true, at },
};
