import type { StreamName } from './streams.js';

/** A durable consumer: its name, stream and the subjects it reads. Names are spelled only here. */
export interface ConsumerDefinition {
  readonly durable: string;
  readonly stream: StreamName;
  readonly filterSubjects: readonly string[];
}

export const Consumers = {
  kissflowRecords: { durable: 'kissflow-records', stream: 'EVENTS', filterSubjects: ['evt.kissflow.>'] },
  whatsappProjections: { durable: 'whatsapp-projections', stream: 'EVENTS', filterSubjects: ['evt.whatsapp.>'] },
  whatsappCommands: { durable: 'whatsapp-commands', stream: 'COMMANDS', filterSubjects: ['cmd.whatsapp.>'] },
  /** Starts a full sync when a session connects. */
  whatsappSyncTrigger: {
    durable: 'whatsapp-sync-trigger',
    stream: 'EVENTS',
    filterSubjects: ['evt.whatsapp.session.status.>'],
  },
  /** Matches the provider's reports of outgoing messages to sends whose result was lost. */
  whatsappReconciler: {
    durable: 'whatsapp-reconciler',
    stream: 'EVENTS',
    filterSubjects: ['evt.whatsapp.message.sent.>', 'evt.whatsapp.message.status.>'],
  },
  /** Downloads and keeps the media of every message that has some. */
  whatsappMedia: {
    durable: 'whatsapp-media',
    stream: 'EVENTS',
    filterSubjects: [
      'evt.whatsapp.message.received.>',
      'evt.whatsapp.message.sent.>',
      'evt.whatsapp.message.imported.>',
    ],
  },
  /** Applies catalog outcomes to `bitrix_links` (company outcomes are applied by the pusher that produced them, their only writer). */
  bitrixLinks: {
    durable: 'bitrix-links',
    stream: 'EVENTS',
    filterSubjects: ['evt.bitrix.product.>', 'evt.bitrix.price.>', 'evt.bitrix.section.>'],
  },
  /** Pushes customer changes to Bitrix24 companies (a deployment with another customer table filters its own subject). */
  bitrixCompanies: { durable: 'bitrix-companies', stream: 'EVENTS', filterSubjects: ['evt.glyms.cliente.>'] },
  /** `logtable` CDC mode: writes each company outcome back to the ERP's change-log rows. */
  glymsLogtableOutcomes: {
    durable: 'glyms-logtable-outcomes',
    stream: 'EVENTS',
    filterSubjects: ['evt.bitrix.company.>'],
  },
} as const satisfies Record<string, ConsumerDefinition>;
