import type { Db } from 'mongodb';
import type { PageOrder } from '@puente/contracts';
import type { ChannelRoute } from './routes.js';

export interface Page {
  items: ({ _id: string; _rev: number } & Record<string, unknown>)[];
  /** Cursor of the next page, when there is one. */
  next?: string;
}

/**
 * Where a page ends: the last `_id` (order `id`), or the last document's time and `_id` (order
 * `newest`), so the next page starts right after it however many documents were inserted meanwhile.
 */
type Cursor = { order: 'id'; after: string } | { order: 'newest'; after: string; at: string | null };

/** A page request this server cannot answer (a bad cursor, an order the channel does not have): a 400. */
export class BadPageError extends Error {}

export class BadCursorError extends BadPageError {}

/** An opaque cursor. Order `id` keeps the form it always had (`{"after": id}`), so cursors given out before stay valid. */
export function encodeCursor(cursor: Cursor): string {
  const body = cursor.order === 'id' ? { after: cursor.after } : cursor;
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function decodeCursor(cursor: string): Cursor {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
      after?: unknown;
      order?: unknown;
      at?: unknown;
    };
    if (typeof value.after === 'string') {
      if (value.order === undefined) return { order: 'id', after: value.after };
      if (value.order === 'newest' && (typeof value.at === 'string' || value.at === null))
        return { order: 'newest', after: value.after, at: value.at };
    }
  } catch {
    // fall through
  }
  throw new BadCursorError('not a cursor this server gave out');
}

/**
 * The filter of the documents after a `newest` cursor: older in time, or as old with a smaller `_id`.
 * Documents without a time sort last (MongoDB orders a missing field below every string), so once the
 * walk reaches them only the `_id` moves it on.
 */
function olderThan(field: string, at: string | null, id: string): Record<string, unknown> {
  if (at === null) return { [field]: null, _id: { $lt: id } };
  return { $or: [{ [field]: { $lt: at } }, { [field]: at, _id: { $lt: id } }, { [field]: null }] };
}

/**
 * One page of a channel's live documents (tombstones left out): in `_id` order by default, or newest
 * first (the route's time field, then `_id`, both descending) for `order: 'newest'`. A cursor carries its
 * order: `more` pages continue the walk they came from.
 */
export async function readPage(
  db: Db,
  route: ChannelRoute,
  cursor: string | undefined,
  pageSize: number,
  order?: PageOrder,
): Promise<Page> {
  const from = cursor === undefined ? undefined : decodeCursor(cursor);
  const walk = from?.order ?? order ?? 'id';
  if (order !== undefined && order !== walk) throw new BadCursorError(`the cursor is of order ${walk}, not ${order}`);
  const filter: Record<string, unknown> = { ...route.filter, _deleted: { $ne: true } };
  const collection = db.collection<{ _id: string; _rev: number } & Record<string, unknown>>(route.collection);
  if (walk === 'id') {
    if (from !== undefined) filter._id = { $gt: from.after };
    const docs = await collection
      .find(filter as never)
      .sort({ _id: 1 })
      .limit(pageSize + 1)
      .toArray();
    const items = docs.slice(0, pageSize) as Page['items'];
    return docs.length > pageSize
      ? { items, next: encodeCursor({ order: 'id', after: items.at(-1)!._id }) }
      : { items };
  }
  const field = route.timeField;
  if (field === undefined) throw new BadPageError('this channel has no time order: leave out order or use order=id');
  if (from?.order === 'newest') Object.assign(filter, olderThan(field, from.at, from.after));
  const docs = await collection
    .find(filter as never)
    .sort({ [field]: -1, _id: -1 })
    .limit(pageSize + 1)
    .toArray();
  const items = docs.slice(0, pageSize) as Page['items'];
  if (docs.length <= pageSize) return { items };
  const last = items.at(-1)!;
  const at = last[field];
  return { items, next: encodeCursor({ order: 'newest', after: last._id, at: typeof at === 'string' ? at : null }) };
}
