import { decodeEvent } from '@puente/contracts';
import { Outcomes, type BatchHandler, type Outcome } from '@puente/bus';
import type { ProjectedDoc } from './projection.js';
import type { PositionedEvent, ProjectionStore } from './store.js';

/**
 * A consumer-runner handler that decodes each delivery (an undecodable one is dead-lettered) and
 * hands the rest to `apply` in one batch, positions taken from the stream.
 */
export function batchHandler(apply: (events: PositionedEvent[]) => Promise<readonly Outcome[]>): BatchHandler {
  return async (deliveries) => {
    const outcomes: Outcome[] = new Array<Outcome>(deliveries.length);
    const events: PositionedEvent[] = [];
    const indexOf: number[] = [];
    deliveries.forEach((delivery, i) => {
      try {
        events.push({ event: decodeEvent(delivery.data), position: delivery.position });
        indexOf.push(i);
      } catch (error) {
        outcomes[i] = Outcomes.dead(error);
      }
    });
    const applied = await apply(events);
    applied.forEach((outcome, j) => (outcomes[indexOf[j]!] = outcome));
    return outcomes;
  };
}

/** A consumer-runner handler applying each batch to one store (see `batchHandler`). */
export function projectionHandler<D extends ProjectedDoc>(store: ProjectionStore<D>): BatchHandler {
  return batchHandler(async (events) => (await store.apply(events)).outcomes);
}
