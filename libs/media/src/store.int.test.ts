import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GridFSBucket, MongoClient, type Db } from 'mongodb';
import { chunkId, contentHash, MediaCollections, MediaCorruptError, MediaRejectedError, MediaStore } from './store.js';

let client: MongoClient;
let db: Db;
before(async () => {
  const url = process.env.MONGO_URL;
  if (!url) throw new Error('MONGO_URL is not set: run tests through `npm test`, which starts the servers');
  client = await MongoClient.connect(url);
  db = client.db(`t_${randomBytes(6).toString('hex')}`);
});
after(async () => {
  await db.dropDatabase().catch(() => undefined);
  await client.close();
});

async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of iterable) parts.push(part);
  return Buffer.concat(parts);
}

describe('MediaStore (GridFS layout on the MongoDB wire)', () => {
  test('stores bytes once by content, reads them back whole and by range', async () => {
    const store = new MediaStore(db, { maxItemBytes: 1 << 20, budgetBytes: 1 << 24, chunkBytes: 1000 });
    const bytes = randomBytes(4_321);
    const first = await store.put(bytes, { contentType: 'image/jpeg', fileName: 'foto.jpg' });
    assert.equal(first.created, true);
    assert.equal(first.media.hash, contentHash(bytes));
    assert.equal(first.media.length, 4_321);
    const again = await store.put(Buffer.from(bytes), { contentType: 'image/jpeg' });
    assert.equal(again.created, false);
    assert.deepEqual(await store.usage(), { bytes: 4_321, items: 1 });
    assert.equal(await db.collection(MediaCollections.chunks).countDocuments({}), 5);
    assert.deepEqual(await store.bytes(first.media), bytes);
    for (const [start, end] of [
      [0, 0],
      [999, 1000],
      [1000, 1999],
      [1234, 4320],
      [4320, 4320],
      [17, 3_999],
    ] as const)
      assert.deepEqual(
        await collect(store.read(first.media, { start, end })),
        bytes.subarray(start, end + 1),
        `${start}-${end}`,
      );
    await assert.rejects(collect(store.read(first.media, { start: 0, end: 4_321 })), RangeError);
  });

  test('chunk ids are <hash>:<n> with GridFS fields, and GridFS itself reads the item back', async () => {
    const store = new MediaStore(db, { maxItemBytes: 1 << 20, budgetBytes: 1 << 24, chunkBytes: 2048 });
    const bytes = randomBytes(5_000);
    const { media } = await store.put(bytes, { contentType: 'application/pdf', fileName: 'factura.pdf' });
    const chunk = await db.collection(MediaCollections.chunks).findOne({ _id: chunkId(media.hash, 2) as never });
    assert.ok(chunk);
    assert.equal(chunk.files_id, media.hash);
    assert.equal(chunk.n, 2);
    const bucket = new GridFSBucket(db, { bucketName: 'media' });
    const read = await collect(bucket.openDownloadStream(media.hash as never) as AsyncIterable<Buffer>);
    assert.deepEqual(read, bytes);
  });

  test('refuses empty, oversized and over-budget items with nothing written', async () => {
    const scoped = client.db(`t_${randomBytes(6).toString('hex')}`);
    try {
      const store = new MediaStore(scoped, { maxItemBytes: 3_000, budgetBytes: 5_000, chunkBytes: 1000 });
      await assert.rejects(store.put(new Uint8Array(0), { contentType: 'image/png' }), { code: 'EMPTY' });
      await assert.rejects(store.put(randomBytes(3_001), { contentType: 'image/png' }), { code: 'TOO_LARGE' });
      await store.put(randomBytes(3_000), { contentType: 'image/png' });
      const refused = await store.put(randomBytes(2_001), { contentType: 'image/png' }).catch((e: unknown) => e);
      assert.ok(refused instanceof MediaRejectedError);
      assert.equal(refused.code, 'BUDGET');
      assert.equal(await scoped.collection(MediaCollections.files).countDocuments({}), 1);
      assert.equal(await scoped.collection(MediaCollections.chunks).countDocuments({}), 3);
      await store.put(randomBytes(2_000), { contentType: 'image/png' });
      assert.deepEqual(await store.usage(), { bytes: 5_000, items: 2 });
    } finally {
      await scoped.dropDatabase();
    }
  });

  test('the same bytes stored by racing writers count once', async () => {
    const scoped = client.db(`t_${randomBytes(6).toString('hex')}`);
    try {
      const store = new MediaStore(scoped, { maxItemBytes: 1 << 20, budgetBytes: 1 << 24, chunkBytes: 1000 });
      const bytes = randomBytes(10_000);
      const results = await Promise.all(
        Array.from({ length: 4 }, () => store.put(bytes, { contentType: 'audio/ogg' })),
      );
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.deepEqual(await store.usage(), { bytes: 10_000, items: 1 });
      assert.deepEqual(await store.bytes(results[0]!.media), bytes);
    } finally {
      await scoped.dropDatabase();
    }
  });

  test('different items stored at once into an empty store are all counted', async () => {
    for (let round = 0; round < 3; round++) {
      const scoped = client.db(`t_${randomBytes(6).toString('hex')}`);
      try {
        // Two stores on one database: two service instances whose first writes race.
        const stores = [0, 1].map(
          () => new MediaStore(scoped, { maxItemBytes: 1 << 20, budgetBytes: 1 << 24, chunkBytes: 1000 }),
        );
        const items = Array.from({ length: 6 }, () => randomBytes(1_500));
        await Promise.all(items.map((bytes, i) => stores[i % 2]!.put(bytes, { contentType: 'image/jpeg' })));
        assert.deepEqual(await stores[0]!.usage(), { bytes: 9_000, items: 6 });
      } finally {
        await scoped.dropDatabase();
      }
    }
  });

  test('a missing chunk is reported, not served short; remove frees the budget', async () => {
    const store = new MediaStore(db, { maxItemBytes: 1 << 20, budgetBytes: 1 << 24, chunkBytes: 1000 });
    const { media } = await store.put(randomBytes(2_500), { contentType: 'video/mp4' });
    const before = await store.usage();
    await db.collection(MediaCollections.chunks).deleteOne({ _id: chunkId(media.hash, 1) as never });
    await assert.rejects(store.bytes(media), MediaCorruptError);
    assert.equal(await store.remove(media.hash), true);
    assert.equal(await store.stat(media.hash), undefined);
    assert.equal(await store.remove(media.hash), false);
    assert.deepEqual(await store.usage(), { bytes: before.bytes - 2_500, items: before.items - 1 });
    assert.equal(await store.stat('not-a-hash'), undefined);
  });
});
