import { createHash } from 'node:crypto';
import { Consumers, encodeToken, subjectFiltersFor, type ConsumerDefinition } from '@puente/contracts';
import { handledBy } from '@puente/projection';
import { whatsappGroup } from './readModels.js';

/** The service's JetStream consumers, by the handler that reads each. */
export interface WhatsAppConsumers {
  projections: ConsumerDefinition;
  commands: ConsumerDefinition;
  syncTrigger: ConsumerDefinition;
  reconciler: ConsumerDefinition;
  /** Keeps incoming media (`media/mediaWorker.ts`). */
  media: ConsumerDefinition;
}

/** The read models' consumer: its durable name from libs/contracts, its subjects what the projections handle. */
const projectionsConsumer: ConsumerDefinition = {
  durable: Consumers.whatsappProjections.durable,
  stream: Consumers.whatsappProjections.stream,
  filterSubjects: subjectFiltersFor(handledBy(whatsappGroup)),
};

export const DefaultConsumers: WhatsAppConsumers = {
  projections: projectionsConsumer,
  commands: Consumers.whatsappCommands,
  syncTrigger: Consumers.whatsappSyncTrigger,
  reconciler: Consumers.whatsappReconciler,
  media: Consumers.whatsappMedia,
};

/**
 * The consumers for a set of sessions: the same definitions with filters narrowed to the sessions'
 * subject tokens (`evt.whatsapp.<entity>.<verb>.<session>`) and durable names suffixed with a hash of
 * the set, so instances serving different sessions never share (or fight over) a consumer.
 */
export function consumersFor(sessions: readonly string[] | undefined): WhatsAppConsumers {
  if (!sessions || sessions.length === 0) return DefaultConsumers;
  const suffix = createHash('sha256')
    .update([...sessions].sort().join('\n'))
    .digest('hex')
    .slice(0, 10);
  const narrow = (c: ConsumerDefinition): ConsumerDefinition => ({
    durable: `${c.durable}-${suffix}`,
    stream: c.stream,
    filterSubjects: c.filterSubjects.flatMap((filter) =>
      sessions.map((session) => {
        // Subjects end with the session: `evt.whatsapp.<entity>.<verb>.<session>`, `cmd.whatsapp.<verb>.<session>`.
        const tokens = filter.startsWith('cmd.') ? 4 : 5;
        const prefix = filter.split('.').slice(0, -1);
        return [...prefix, ...Array<string>(tokens - 1 - prefix.length).fill('*'), encodeToken(session)].join('.');
      }),
    ),
  });
  return {
    projections: narrow(DefaultConsumers.projections),
    commands: narrow(DefaultConsumers.commands),
    syncTrigger: narrow(DefaultConsumers.syncTrigger),
    reconciler: narrow(DefaultConsumers.reconciler),
    media: narrow(DefaultConsumers.media),
  };
}
