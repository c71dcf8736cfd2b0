import type { Db } from 'mongodb';
import type { ChannelRouteDescriptor, ConsumerDefinition } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { projectionsOf, ProjectionGroupStore, type ProjectionGroup } from './group.js';
import type { RebuildTarget } from './rebuild.js';

/**
 * A read model (or several applied together) as a whole: its projections, the consumer they are
 * applied from, the channel routes realtime serves their documents on, and what a rebuild needs.
 */
export interface ReadModel {
  /** The name `puente replay` takes (and the rebuild lock's key). */
  readonly name: string;
  readonly group: ProjectionGroup;
  /** The live consumer: its subjects are replayed, and it is paused while a rebuild swaps in. */
  readonly consumer: ConsumerDefinition;
  /** The channels its documents are served on (entries of `ChannelRoutes` in libs/contracts, or a fixture's). */
  readonly routes: readonly ChannelRouteDescriptor[];
  /** The documents of a collection the consumer covers (a consumer narrowed to some sessions); default all. */
  scope?(collection: string): Record<string, unknown> | undefined;
}

/** What a rebuild of a read model needs, derived from its descriptor: its collections and staging appliers. */
export function rebuildTarget(readModel: ReadModel, deps: { db: Db; bus: Bus }): RebuildTarget {
  return {
    name: readModel.name,
    consumer: readModel.consumer,
    collections: projectionsOf(readModel.group).map((p) => {
      const scope = readModel.scope?.(p.collection);
      return { collection: p.collection, checkpoint: p.name, ...(scope ? { scope } : {}) };
    }),
    staging: (suffix) => {
      const stores = new ProjectionGroupStore(deps.db, deps.bus, readModel.group, {
        writers: 'exclusive',
        staging: suffix,
      });
      return { init: () => stores.init(), apply: (events) => stores.apply(events) };
    },
  };
}

/**
 * A read model `puente replay` can rebuild, as its service exports it: the name, and the descriptor
 * configured from the environment the way the service configures itself (same consumer, same mapping).
 */
export interface Replayable {
  readonly name: string;
  readModel(env: NodeJS.ProcessEnv): ReadModel;
}
