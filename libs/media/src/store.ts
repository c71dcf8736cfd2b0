import { createHash } from 'node:crypto';
import { Binary, MongoBulkWriteError, MongoServerError, type Collection, type Db } from 'mongodb';

/** The collections of the media store: GridFS's layout under the bucket name `media`. */
export const MediaCollections = {
  files: 'media.files',
  chunks: 'media.chunks',
} as const;

/** GridFS's default chunk size (255 KiB): a chunk stays well under any wire message limit. */
export const DEFAULT_CHUNK_BYTES = 255 * 1024;

/** One stored item, as its GridFS files document describes it. */
export interface StoredMedia {
  /** The SHA-256 of the bytes (hex): the files document's `_id`, and the key every message refers to. */
  hash: string;
  length: number;
  chunkSize: number;
  contentType: string;
  fileName?: string;
  uploadDate: Date;
}

/** Why an item was not stored. */
export type MediaRejection = 'EMPTY' | 'TOO_LARGE' | 'BUDGET';

/** An item the store refuses: nothing of it was written. */
export class MediaRejectedError extends Error {
  override readonly name = 'MediaRejectedError';
  constructor(
    readonly code: MediaRejection,
    message: string,
  ) {
    super(message);
  }
}

/** A stored item whose chunks are missing or of the wrong size (a write that died, or damage): not served. */
export class MediaCorruptError extends Error {
  override readonly name = 'MediaCorruptError';
}

export interface MediaStoreOptions {
  /** Largest item stored (bytes). */
  maxItemBytes: number;
  /** Total bytes the store may hold; an item that would pass it is refused. */
  budgetBytes: number;
  chunkBytes?: number;
  /** Chunks read ahead while streaming (each is one `_id` lookup). */
  readAhead?: number;
  /**
   * How old the usage the budget is checked against may be (ms): it is summed over the files documents
   * at most this often, and this store's own writes are added in between. Several writers may together
   * pass the budget by what they store within this time.
   */
  usageMaxAgeMs?: number;
}

interface FilesDoc {
  _id: string;
  length: number;
  chunkSize: number;
  uploadDate: Date;
  filename: string;
  contentType: string;
  metadata: { contentType: string; fileName?: string };
}

interface ChunkDoc {
  _id: string;
  files_id: string;
  n: number;
  data: Binary;
}

/** A byte range of an item, both ends included (HTTP's `Range: bytes=start-end`). */
export interface ByteRange {
  start: number;
  end: number;
}

/** The SHA-256 of some bytes, as the store keys them. */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The `_id` of an item's chunk `n`: every read, a range included, is an `_id` lookup. */
export function chunkId(hash: string, n: number): string {
  return `${hash}:${n}`;
}

const HASH = /^[0-9a-f]{64}$/;
const CHUNKS_PER_INSERT = 16;

/**
 * Media kept in MongoDB (or anything speaking its wire protocol) in GridFS's layout: `media.files` holds
 * one document per item, `_id` its content hash; `media.chunks` holds its bytes in chunks whose `_id` is
 * `<hash>:<n>`, with GridFS's `files_id`, `n` and `data`, so GridFS tools read the bucket `media` as
 * theirs. Every read is a lookup by `_id` (FerretDB v1 serves no other index for these reads). Items
 * are keyed by content: storing the same bytes twice writes nothing new. The files document is written
 * last, so an item exists only once all its chunks do. Usage is the sum of the files documents' lengths
 * (no counter to keep: an update on FerretDB is a read, modify and write, and racing increments would be
 * lost), checked against the budget from a copy at most `usageMaxAgeMs` old.
 */
export class MediaStore {
  private readonly files: Collection<FilesDoc>;
  private readonly chunks: Collection<ChunkDoc>;
  /** The usage last summed, with this store's writes since; `at` when it was summed. */
  private known: { bytes: number; items: number; at: number } | undefined;
  private summing: Promise<{ bytes: number; items: number }> | undefined;
  readonly chunkBytes: number;
  private readonly readAhead: number;

  constructor(
    db: Db,
    readonly options: MediaStoreOptions,
  ) {
    this.files = db.collection<FilesDoc>(MediaCollections.files);
    this.chunks = db.collection<ChunkDoc>(MediaCollections.chunks);
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.readAhead = Math.max(1, options.readAhead ?? 4);
  }

  /**
   * Stores bytes once: returns the item and whether this call created it. Refuses an empty item, one
   * over the item cap, or one that would take the store over its budget, with nothing written.
   */
  async put(
    bytes: Uint8Array,
    meta: { contentType: string; fileName?: string | undefined },
  ): Promise<{ media: StoredMedia; created: boolean }> {
    if (bytes.length === 0) throw new MediaRejectedError('EMPTY', 'the media item is empty');
    if (bytes.length > this.options.maxItemBytes)
      throw new MediaRejectedError(
        'TOO_LARGE',
        `the media item has ${bytes.length} bytes, over the cap of ${this.options.maxItemBytes}`,
      );
    const hash = contentHash(bytes);
    const existing = await this.stat(hash);
    if (existing) return { media: existing, created: false };
    const used = await this.knownUsage();
    if (used + bytes.length > this.options.budgetBytes)
      throw new MediaRejectedError(
        'BUDGET',
        `the media store holds ${used} of ${this.options.budgetBytes} bytes; ${bytes.length} more do not fit`,
      );
    const count = Math.ceil(bytes.length / this.chunkBytes);
    for (let first = 0; first < count; first += CHUNKS_PER_INSERT) {
      const docs: ChunkDoc[] = [];
      for (let n = first; n < Math.min(count, first + CHUNKS_PER_INSERT); n++) {
        const data = bytes.subarray(n * this.chunkBytes, Math.min(bytes.length, (n + 1) * this.chunkBytes));
        docs.push({ _id: chunkId(hash, n), files_id: hash, n, data: new Binary(data) });
      }
      await ignoringDuplicates(this.chunks.insertMany(docs, { ordered: false }));
    }
    const doc: FilesDoc = {
      _id: hash,
      length: bytes.length,
      chunkSize: this.chunkBytes,
      uploadDate: new Date(),
      filename: meta.fileName ?? hash,
      contentType: meta.contentType,
      metadata: { contentType: meta.contentType, ...(meta.fileName ? { fileName: meta.fileName } : {}) },
    };
    const created = await ignoringDuplicates(this.files.insertOne(doc));
    if (!created) return { media: (await this.stat(hash))!, created: false };
    this.counted(bytes.length, 1);
    return { media: storedOf(doc), created: true };
  }

  /** The stored item with this hash, if it is complete. */
  async stat(hash: string): Promise<StoredMedia | undefined> {
    if (!HASH.test(hash)) return undefined;
    const doc = await this.files.findOne({ _id: hash });
    return doc ? storedOf(doc) : undefined;
  }

  /** The item's bytes (or a range of them) in order, chunk by chunk, reading a few chunks ahead. */
  async *read(media: StoredMedia, range: ByteRange = { start: 0, end: media.length - 1 }): AsyncGenerator<Buffer> {
    if (media.length === 0 || range.start > range.end) return;
    if (range.start < 0 || range.end >= media.length)
      throw new RangeError(`bytes ${range.start}-${range.end} are outside 0-${media.length - 1}`);
    const size = media.chunkSize;
    const first = Math.floor(range.start / size);
    const last = Math.floor(range.end / size);
    const pending: Promise<Buffer>[] = [];
    let next = first;
    const ahead = () => {
      while (next <= last && pending.length < this.readAhead) {
        const reading = this.chunk(media, next++);
        // Awaited in turn below; a reader that stops early must not leave a rejection unhandled.
        reading.catch(() => undefined);
        pending.push(reading);
      }
    };
    ahead();
    for (let n = first; n <= last; n++) {
      const data = await pending.shift()!;
      ahead();
      const from = n === first ? range.start - n * size : 0;
      const to = n === last ? range.end - n * size + 1 : data.length;
      yield data.subarray(from, to);
    }
  }

  /** The whole item in memory (for uploading to a provider). */
  async bytes(media: StoredMedia): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.read(media)) parts.push(part);
    return Buffer.concat(parts, media.length);
  }

  /** Bytes and items held, summed over the files documents now (one pass over them). */
  async usage(): Promise<{ bytes: number; items: number }> {
    // `$sum: 1` counts nothing on FerretDB v1: the items are counted apart.
    const [[row], items] = await Promise.all([
      this.files.aggregate<{ bytes: number }>([{ $group: { _id: null, bytes: { $sum: '$length' } } }]).toArray(),
      this.files.countDocuments({}),
    ]);
    const usage = { bytes: row?.bytes ?? 0, items };
    this.known = { ...usage, at: Date.now() };
    return usage;
  }

  /** Removes an item (its files document first, so it stops being served, then its chunks); false if it was not there. */
  async remove(hash: string): Promise<boolean> {
    const media = await this.stat(hash);
    if (!media) return false;
    const { deletedCount } = await this.files.deleteOne({ _id: hash });
    const count = Math.ceil(media.length / media.chunkSize);
    for (let n = 0; n < count; n++) await this.chunks.deleteOne({ _id: chunkId(hash, n) });
    if (deletedCount === 1) this.counted(-media.length, -1);
    return deletedCount === 1;
  }

  /** The bytes held as last summed (summing again once that is older than `usageMaxAgeMs`), with this store's writes since. */
  private async knownUsage(): Promise<number> {
    const maxAge = this.options.usageMaxAgeMs ?? 10_000;
    if (!this.known || Date.now() - this.known.at > maxAge)
      await (this.summing ??= this.usage().finally(() => (this.summing = undefined)));
    return this.known!.bytes;
  }

  private counted(bytes: number, items: number): void {
    if (this.known)
      this.known = { bytes: this.known.bytes + bytes, items: this.known.items + items, at: this.known.at };
  }

  private async chunk(media: StoredMedia, n: number): Promise<Buffer> {
    const doc = await this.chunks.findOne({ _id: chunkId(media.hash, n) });
    const expected = Math.min(media.chunkSize, media.length - n * media.chunkSize);
    const data = doc ? Buffer.from(doc.data.buffer) : undefined;
    if (!data || data.length !== expected)
      throw new MediaCorruptError(`media ${media.hash} chunk ${n} is ${data ? `${data.length} bytes` : 'missing'}`);
    return data;
  }
}

function storedOf(doc: FilesDoc): StoredMedia {
  return {
    hash: doc._id,
    length: doc.length,
    chunkSize: doc.chunkSize,
    contentType: doc.metadata?.contentType ?? doc.contentType ?? 'application/octet-stream',
    ...((doc.metadata?.fileName ?? undefined) ? { fileName: doc.metadata.fileName! } : {}),
    uploadDate: doc.uploadDate,
  };
}

/** Runs a write whose duplicate keys mean "already there": true when it wrote everything, false when some existed. */
async function ignoringDuplicates(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (error instanceof MongoBulkWriteError) {
      const errors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      if (errors.length > 0 && errors.every((e) => e.code === 11000)) return false;
    }
    if (error instanceof MongoServerError && error.code === 11000) return false;
    throw error;
  }
}
