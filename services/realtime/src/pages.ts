import type { Db } from 'mongodb';
import type { ChannelRoute } from './routes.js';

export interface Page {
  items: ({ _id: string; _rev: number } & Record<string, unknown>)[];
  /** Cursor of the next page, when there is one. */
  next?: string;
}

/** An opaque cursor: the last `_id` of the previous page. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId })).toString('base64url');
}

export class BadCursorError extends Error {}

export function decodeCursor(cursor: string): string {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof value.after === 'string') return value.after;
  } catch {
    // fall through
  }
  throw new BadCursorError('not a cursor this server gave out');
}

/** One page of a channel's live documents (tombstones left out), in `_id` order. */
export async function readPage(
  db: Db,
  route: ChannelRoute,
  cursor: string | undefined,
  pageSize: number,
): Promise<Page> {
  const filter: Record<string, unknown> = { ...route.filter, _deleted: { $ne: true } };
  if (cursor !== undefined) filter._id = { $gt: decodeCursor(cursor) };
  const docs = await db
    .collection<{ _id: string; _rev: number }>(route.collection)
    .find(filter as never)
    .sort({ _id: 1 })
    .limit(pageSize + 1)
    .toArray();
  const items = docs.slice(0, pageSize) as Page['items'];
  return docs.length > pageSize ? { items, next: encodeCursor(items.at(-1)!._id) } : { items };
}
