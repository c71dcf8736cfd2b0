import { Channels, Collections, type DomainEventOf } from '@puente/contracts';
import {
  aspectVersion,
  isNewer,
  setAspect,
  unhandled,
  type AspectVersion,
  type ProjectedDoc,
  type Projection,
} from '@puente/projection';

/** One multi-value entry (phone, e-mail) that bitrix-sync wrote: its Bitrix24 id and the value it held. */
export interface MultiValueEntry {
  id: string;
  value: string;
}

/** A `bitrix_links` document (`_id` `<entity>:<source key>`): what bitrix-sync knows of one entity in Bitrix24. */
export interface BitrixLinkDoc extends ProjectedDoc {
  entity: 'company' | 'product' | 'price' | 'section';
  sourceKey: string;
  bitrixId: string | null;
  /** `synced`, `deleted` (in Bitrix24 too) or `failed` (see `lastError`). */
  status: 'synced' | 'deleted' | 'failed';
  lastSyncedAt: string | null;
  lastError: { code: string; message: string; at: string } | null;
  /** Ids of the multi-value entries last written, by field (`PHONE`, `EMAIL`). */
  multiValueIds: Record<string, string[]>;
  /** The same entries with their values: what the next update diffs against, so entries are replaced, never piled up. */
  multiValues: Record<string, MultiValueEntry[]>;
  /** Digest of the fields last written. */
  digest: string | null;
  /** `EVENTS` sequence of the newest source change written. */
  sourceSequence?: number;
  _v: { sync: AspectVersion };
}

export const linkKey = (entity: string, sourceKey: string): string => `${entity}:${sourceKey}`;

/** `bitrix_links`: the outcome events of bitrix-sync, one document per entity; replaying them rebuilds it. */
export function linksProjection(): Projection<
  BitrixLinkDoc,
  DomainEventOf<'bitrix.entity.synced.v1' | 'bitrix.entity.failed.v1'>
> {
  return {
    name: 'bitrix-links',
    collection: Collections.bitrixLinks,
    indexes: [{ key: { entity: 1, bitrixId: 1 }, name: 'entity_bitrixId' }],
    handles: ['bitrix.entity.synced.v1', 'bitrix.entity.failed.v1'],
    keys: (event) => [linkKey(event.data.entity, event.data.sourceKey)],
    channel: () => Channels.bitrixLinks(),
    evolve(doc, event, { position }) {
      const version = aspectVersion(event.data.at, position);
      if (doc && !isNewer(doc._v.sync, version)) return doc;
      const base: BitrixLinkDoc = doc ?? {
        entity: event.data.entity,
        sourceKey: event.data.sourceKey,
        bitrixId: null,
        status: 'synced',
        lastSyncedAt: null,
        lastError: null,
        multiValueIds: {},
        multiValues: {},
        digest: null,
        _v: { sync: version },
      };
      switch (event.type) {
        case 'bitrix.entity.failed.v1': {
          // NOT_FOUND: the company was deleted in Bitrix24; the next push creates it again.
          const bitrixId = event.data.error.code === 'NOT_FOUND' ? null : (event.data.bitrixId ?? base.bitrixId);
          return setAspect(
            base,
            'sync',
            { bitrixId, status: 'failed', lastError: { ...event.data.error, at: event.data.at } },
            version,
          );
        }
        case 'bitrix.entity.synced.v1': {
          const { action, bitrixId, multiValues, digest, at } = event.data;
          const sourceSequence = Math.max(event.data.sourceSequence ?? 0, base.sourceSequence ?? 0) || undefined;
          if (
            action === 'unchanged' &&
            doc &&
            doc.status === 'synced' &&
            (doc.sourceSequence ?? 0) >= (event.data.sourceSequence ?? 0)
          )
            return doc;
          if (action === 'deleted') {
            return setAspect(
              base,
              'sync',
              {
                bitrixId: bitrixId ?? base.bitrixId,
                status: 'deleted',
                lastSyncedAt: at,
                lastError: null,
                multiValueIds: {},
                multiValues: {},
                digest: null,
                ...(sourceSequence ? { sourceSequence } : {}),
              },
              version,
            );
          }
          const entries = multiValues ?? base.multiValues;
          return setAspect(
            base,
            'sync',
            {
              bitrixId: bitrixId ?? base.bitrixId,
              status: 'synced',
              lastSyncedAt: at,
              lastError: null,
              multiValues: entries,
              multiValueIds: Object.fromEntries(
                Object.entries(entries).map(([field, list]) => [field, list.map((e) => e.id)]),
              ),
              digest: digest ?? base.digest,
              ...(sourceSequence ? { sourceSequence } : {}),
            },
            version,
          );
        }
        default:
          return unhandled(event);
      }
    },
  };
}
