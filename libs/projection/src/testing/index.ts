import { MongoClient, type Db } from 'mongodb';
import { randomBytes } from 'node:crypto';
import { createEvent, type DomainEvent, type DomainEventOf } from '@puente/contracts';
import { aspectVersion, isNewer, setAspect, type AspectVersion } from '../versions.js';
import { unhandled, type ProjectedDoc, type Projection } from '../projection.js';

/** A fresh database on the test run's MongoDB-wire server; `drop()` removes it. */
export async function testDatabase(): Promise<{ client: MongoClient; db: Db; drop: () => Promise<void> }> {
  const url = process.env.MONGO_URL;
  if (!url) throw new Error('MONGO_URL is not set: run tests through `npm test`, which starts the servers');
  const client = await MongoClient.connect(url);
  const db = client.db(`t_${randomBytes(6).toString('hex')}`);
  return {
    client,
    db,
    drop: async () => {
      await db.dropDatabase().catch(() => undefined);
      await client.close();
    },
  };
}

interface FixtureMessage extends ProjectedDoc {
  chatId?: string;
  text?: string;
  direction?: 'in' | 'out';
  status?: string;
  /** Counts content changes: a fact counted once, to prove nothing is applied twice. */
  contentChanges: number;
  _v: { content?: AspectVersion; status?: AspectVersion };
}

const RANK: Record<string, number> = { sent: 1, delivered: 2, read: 3, failed: 4 };

/**
 * A small two-aspect read model (content and status of a message) that exercises the store the way
 * the real projections do; it is a test fixture, not the WhatsApp projection.
 */
export function messageFixtureProjection(
  collection: string,
): Projection<
  FixtureMessage,
  DomainEventOf<'whatsapp.message.received.v1' | 'whatsapp.message.sent.v1' | 'whatsapp.message.status.v1'>
> {
  return {
    name: `fixture-${collection}`,
    collection,
    handles: ['whatsapp.message.received.v1', 'whatsapp.message.sent.v1', 'whatsapp.message.status.v1'],
    keys: (event) => [`${event.data.session}:${event.data.messageId}`],
    initial: () => ({ contentChanges: 0, _v: {} }),
    evolve: (doc, event, { position }) => {
      const base = doc!;
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1': {
          const version = aspectVersion(event.data.timestamp, position);
          if (!isNewer(base._v.content, version)) return base;
          return setAspect(
            base,
            'content',
            {
              chatId: event.data.chatId,
              text: event.data.text,
              direction: event.data.fromMe ? 'out' : 'in',
              contentChanges: base.contentChanges + 1,
            },
            version,
          );
        }
        case 'whatsapp.message.status.v1': {
          const version = aspectVersion(RANK[event.data.status] ?? 0, position);
          if (!isNewer(base._v.status, version)) return base;
          return setAspect(base, 'status', { status: event.data.status }, version);
        }
        default:
          return unhandled(event);
      }
    },
    channel: (doc) => `fixture.${collection}.${doc._id.split(':')[0]}`,
    indexes: [{ key: { chatId: 1 }, name: 'chatId' }],
  };
}

/** Events about one message: its content and the given statuses, in that order. */
export function messageEvents(
  session: string,
  messageId: string,
  statuses: ('sent' | 'delivered' | 'read' | 'failed')[],
  text = 'Hola, ¿cómo estás? 👋',
): DomainEvent[] {
  const content = createEvent(
    'whatsapp.message.sent.v1',
    {
      session,
      provider: 'inboxhub',
      messageId,
      chatId: '34612345678@s.whatsapp.net',
      fromMe: true,
      type: 'text',
      text,
      timestamp: '2025-10-15T10:30:00.000Z',
    },
    { source: 'test' },
  );
  const statusEvents = statuses.map((status, i) =>
    createEvent(
      'whatsapp.message.status.v1',
      { session, provider: 'inboxhub', messageId, status, timestamp: `2025-10-15T10:3${i + 1}:00.000Z` },
      { source: 'test' },
    ),
  );
  return [content, ...statusEvents];
}
