import { createHash } from 'node:crypto';
import { Binary, MongoBulkWriteError, MongoServerError, type Collection, type Db } from 'mongodb';

/** The collections of the media store: GridFS's layout under the bucket name `media`, and the store's usage counter. */
export const MediaCollections = {
  files: 'media.files',
  chunks: 'media.chunks',
  usage: 'media.usage',
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

interface UsageDoc {
  _id: string;
  bytes: number;
  items: number;
  /** On the claim: when it was taken. */
  at?: Date;
}

/** The usage counter's claim document (see `MediaStore.count`), and how long a claim may be held. */
const USAGE_CLAIM = 'total:claim';
const USAGE_CLAIM_TTL_MS = 30_000;

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
 * last, so an item exists only once all its chunks do; usage is counted once per item.
 */
export class MediaStore {
  private readonly files: Collection<FilesDoc>;
  private readonly chunks: Collection<ChunkDoc>;
  private readonly usageDocs: Collection<UsageDoc>;
  readonly chunkBytes: number;
  private readonly readAhead: number;

  constructor(
    db: Db,
    readonly options: MediaStoreOptions,
  ) {
    this.files = db.collection<FilesDoc>(MediaCollections.files);
    this.chunks = db.collection<ChunkDoc>(MediaCollections.chunks);
    this.usageDocs = db.collection<UsageDoc>(MediaCollections.usage);
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
    const used = await this.usage();
    if (used.bytes + bytes.length > this.options.budgetBytes)
      throw new MediaRejectedError(
        'BUDGET',
        `the media store holds ${used.bytes} of ${this.options.budgetBytes} bytes; ${bytes.length} more do not fit`,
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
    await this.count(bytes.length, 1);
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

  /** Bytes and items held. */
  async usage(): Promise<{ bytes: number; items: number }> {
    const doc = await this.usageDocs.findOne({ _id: 'total' });
    return { bytes: doc?.bytes ?? 0, items: doc?.items ?? 0 };
  }

  /** Removes an item (its files document first, so it stops being served, then its chunks); false if it was not there. */
  async remove(hash: string): Promise<boolean> {
    const media = await this.stat(hash);
    if (!media) return false;
    const { deletedCount } = await this.files.deleteOne({ _id: hash });
    const count = Math.ceil(media.length / media.chunkSize);
    for (let n = 0; n < count; n++) await this.chunks.deleteOne({ _id: chunkId(hash, n) });
    if (deletedCount === 1) await this.count(-media.length, -1);
    return deletedCount === 1;
  }

  /**
   * Moves the usage counter. FerretDB runs an update as read, modify, write, so increments that race
   * (items stored at once, by one instance or several) would be lost: the counter's writers take turns
   * behind a claim, a unique insert (atomic on every server); a claim older than USAGE_CLAIM_TTL_MS
   * belongs to a writer that died and is taken over.
   */
  private async count(bytes: number, items: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const claim = { _id: USAGE_CLAIM, bytes: 0, items: 0, at: new Date() };
      if (await ignoringDuplicates(this.usageDocs.insertOne(claim))) break;
      if (attempt % 20 === 19)
        await this.usageDocs.deleteOne({ _id: USAGE_CLAIM, at: { $lt: new Date(Date.now() - USAGE_CLAIM_TTL_MS) } });
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * Math.min(50, 2 * (attempt + 1))));
    }
    try {
      const total = await this.usage();
      await this.usageDocs.replaceOne(
        { _id: 'total' },
        { bytes: total.bytes + bytes, items: total.items + items },
        { upsert: true },
      );
    } finally {
      await this.usageDocs.deleteOne({ _id: USAGE_CLAIM });
    }
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
