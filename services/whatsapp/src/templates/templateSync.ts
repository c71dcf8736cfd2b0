import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { Collections, createEvent, type DomainEvent, type MessageTemplate } from '@puente/contracts';
import { eventIdFor, type Bus } from '@puente/bus';
import type { TemplateDoc } from './templatesProjection.js';

const SOURCE = 'urn:puente:whatsapp';

/** Where a Cloud API session's templates are read from. */
export interface TemplateSource {
  listTemplates(wabaId: string): Promise<MessageTemplate[]>;
}

/**
 * The WhatsApp Business Account of each Cloud API session (its phone number id): `WHATSAPP_WABA_IDS`
 * (`<phone-number-id>:<waba-id>,...`) names them one by one; `WHATSAPP_WABA_ID` is the account of every
 * other Cloud API session.
 */
export class WabaDirectory {
  private readonly bySession: ReadonlyMap<string, string>;

  constructor(
    pairs: readonly (readonly [session: string, wabaId: string])[] = [],
    private readonly fallback?: string,
  ) {
    this.bySession = new Map(pairs);
  }

  /** The session's WABA id, or undefined when none is configured. */
  wabaOf(session: string): string | undefined {
    return this.bySession.get(session) ?? this.fallback;
  }

  /** The sessions named one by one. */
  get sessions(): string[] {
    return [...this.bySession.keys()];
  }

  get hasFallback(): boolean {
    return this.fallback !== undefined;
  }
}

/** No WABA id is configured for a Cloud API session: its templates cannot be read. */
export class WabaNotConfiguredError extends Error {
  readonly code = 'WABA_NOT_CONFIGURED';
  constructor(session: string) {
    super(
      `the Cloud API has no history to sync, and session ${session}'s templates need its WhatsApp Business Account: set WHATSAPP_WABA_IDS (<phone-number-id>:<waba-id>) or WHATSAPP_WABA_ID`,
    );
  }
}

/**
 * Reads a Cloud API session's message templates from its WhatsApp Business Account and records the
 * list as `whatsapp.templates.synced.v1` (the `wa_templates` read model follows it). Templates the read
 * model holds that the list no longer has are named as removed.
 */
export class TemplateSync {
  constructor(
    private readonly deps: {
      bus: Bus;
      db: Db;
      logger: Logger;
      source: TemplateSource;
      wabas: WabaDirectory;
      /** The clock (tests pass their own). */
      now?: () => Date;
    },
  ) {}

  /** Reads and records the session's templates; returns how many there are. */
  async sync(session: string): Promise<number> {
    const wabaId = this.deps.wabas.wabaOf(session);
    if (!wabaId) throw new WabaNotConfiguredError(session);
    const templates = await this.deps.source.listTemplates(wabaId);
    const listed = new Set(templates.map((t) => `${t.name}\u0000${t.language}`));
    const held = await this.deps.db
      .collection<TemplateDoc & { _id: string }>(Collections.waTemplates)
      .find({ session, _deleted: { $ne: true } }, { projection: { name: 1, language: 1 } })
      .toArray();
    const removed = held
      .filter((doc) => !listed.has(`${doc.name}\u0000${doc.language}`))
      .map((doc) => ({ name: doc.name, language: doc.language }));
    const timestamp = (this.deps.now?.() ?? new Date()).toISOString();
    const msgId = `templates:${session}:${timestamp}`;
    const event = createEvent(
      'whatsapp.templates.synced.v1',
      { session, provider: 'cloud-api', wabaId, templates, removed, timestamp },
      { source: SOURCE, id: eventIdFor(msgId) },
    );
    await this.deps.bus.publishEvent(event as DomainEvent, { msgId });
    this.deps.logger.info({ session, templates: templates.length, removed: removed.length }, 'templates synced');
    return templates.length;
  }

  /** The Cloud API sessions whose templates are read at start: those named one by one, and (with a default WABA) those the read models know. */
  async sessionsAtStart(only: readonly string[] | undefined): Promise<string[]> {
    const known = this.deps.wabas.hasFallback
      ? (
          await this.deps.db
            .collection<{ _id: string; provider?: string }>(Collections.waSessions)
            .find({ provider: 'cloud-api' }, { projection: { _id: 1 } })
            .toArray()
        ).map((doc) => doc._id)
      : [];
    return [...new Set([...this.deps.wabas.sessions, ...known])].filter((s) => !only || only.includes(s));
  }
}
