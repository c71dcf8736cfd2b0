import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscription, type Connection } from './connection.js';
import type { ChannelHub, Offer } from './feed.js';

/** A subscription on a hub and a connection that only record what they are given. */
function subscribed() {
  const sent: string[] = [];
  const hub = { revs: new Map<string, number>(), subscribers: new Set() } as unknown as ChannelHub;
  const connection = { context: { limits: { maxPending: 100 } }, sendRaw: (b: string) => sent.push(b) };
  const subscription = new Subscription('kissflow.records.DS', hub, connection as unknown as Connection);
  /** The hub forwards a version (as the feed does: it remembers it, then offers it). */
  const forward = (key: string, rev: number) => {
    hub.revs.set(key, rev);
    subscription.offer({ key, rev, position: rev, bytes: `${key}@${rev}` } satisfies Offer);
  };
  return { sent, hub, subscription, forward };
}

test('realtime subscription - versions queued while the snapshot was read never follow a newer one it sent', () => {
  const { sent, subscription, forward } = subscribed();
  // Two projectors wrote row12 at 7 and 8; the hub forwarded both while the snapshot (which read 8) was in flight.
  forward('row12', 7);
  forward('row12', 8);
  forward('row3', 4);
  subscription.hold('row12', 8);
  subscription.hold('row3', 3);
  subscription.goLive();
  assert.deepEqual(sent, ['row3@4'], 'row12 7 and 8 are covered by the snapshot; row3 4 is newer than it');
  forward('row12', 9);
  assert.deepEqual(sent, ['row3@4', 'row12@9']);
  assert.equal(subscription.floors.size, 0, 'no floor is kept for a document the hub has forwarded as far');
});

test('realtime subscription - once live, a page read ahead of the hub holds its version until the hub catches up', () => {
  const { sent, subscription, forward } = subscribed();
  subscription.goLive();
  forward('row1', 1);
  // A later page (`more`) read row1 at 3 before the hub forwarded 2 and 3.
  subscription.hold('row1', 3);
  forward('row1', 2);
  forward('row1', 3);
  forward('row1', 4);
  assert.deepEqual(sent, ['row1@1', 'row1@4']);
});
