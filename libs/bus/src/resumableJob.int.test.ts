import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from 'nats';
import type { Bus } from './bus.js';
import {
  readJobState,
  ResumableJob,
  type JobBusyReason,
  type JobState,
  type ResumableJobOptions,
} from './resumableJob.js';
import { connectTestBus, uniqueName } from './testing/index.js';

interface CountState extends JobState {
  runId: string;
  page: number;
}

class BusyError extends Error {
  constructor(readonly reason: JobBusyReason<CountState>) {
    super(reason.kind);
  }
}

let bus: Bus;
let kv: KV;
before(async () => {
  bus = await connectTestBus();
  kv = await bus.kv(uniqueName('jobs_'), { history: 1 });
});
after(async () => {
  await bus.close();
});

/** A job of this test on a fresh key, held by `owner`, at the clock `clock.now`. */
function options(
  key: string,
  owner: string,
  clock: { now: number },
  extra: Partial<ResumableJobOptions<CountState>> = {},
): ResumableJobOptions<CountState> {
  return {
    kv,
    key,
    owner,
    staleAfterMs: 60_000,
    now: () => clock.now,
    fresh: () => ({ runId: uniqueName('run-'), owner, heartbeatAt: clock.now, phase: 'running', page: 1 }),
    resume: (current) => (current.phase === 'completed' ? undefined : current),
    busy: (reason) => new BusyError(reason),
    ...extra,
  };
}

describe('ResumableJob', () => {
  test('one worker at a time: a running job is busy until its holder stops saving, then it is resumed from its last save', async () => {
    const key = uniqueName('job.');
    const clock = { now: 1_000_000 };
    const first = await ResumableJob.claim(options(key, 'a', clock));
    await first.save({ ...first.state, page: 4 });
    await assert.rejects(
      ResumableJob.claim(options(key, 'b', clock)),
      (error: BusyError) => error.reason.kind === 'running' && error.reason.current.page === 4,
    );

    clock.now += 60_000;
    const second = await ResumableJob.claim(options(key, 'b', clock));
    assert.equal(second.state.runId, first.state.runId, 'the same run, resumed');
    assert.equal(second.state.page, 4);
    assert.equal(second.state.owner, 'b');
    await assert.rejects(first.save({ ...first.state, page: 5 }), 'the old holder finds out on its next save');
    assert.equal((await readJobState<CountState>(kv, key))?.owner, 'b');
  });

  test('a failed run resumes without its error; a run resume() refuses is discarded and started fresh', async () => {
    const key = uniqueName('job.');
    const clock = { now: 2_000_000 };
    const first = await ResumableJob.claim(options(key, 'a', clock));
    await first.save({ ...first.state, page: 2, phase: 'failed', error: 'page 2 failed' });
    const resumed = await ResumableJob.claim(options(key, 'b', clock));
    assert.equal(resumed.state.runId, first.state.runId);
    assert.equal(resumed.state.phase, 'running');
    assert.equal(resumed.state.error, undefined);

    await resumed.save({ ...resumed.state, phase: 'completed' });
    const discarded: CountState[] = [];
    const fresh = await ResumableJob.claim(
      options(key, 'c', clock, { discard: async (current) => void discarded.push(current) }),
    );
    assert.notEqual(fresh.state.runId, first.state.runId);
    assert.equal(fresh.state.page, 1);
    assert.deepEqual(
      discarded.map((d) => d.phase),
      ['completed'],
    );
  });

  test('two workers starting the same new job at once: one holds it, the other is told it started elsewhere', async () => {
    const key = uniqueName('job.');
    const clock = { now: 3_000_000 };
    const results = await Promise.allSettled([
      ResumableJob.claim(options(key, 'a', clock)),
      ResumableJob.claim(options(key, 'b', clock)),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as BusyError).reason.kind, 'started-elsewhere');
  });

  test('progress is reported after every save, with a fresh heartbeat', async () => {
    const key = uniqueName('job.');
    const clock = { now: 4_000_000 };
    const seen: number[] = [];
    const job = await ResumableJob.claim(
      options(key, 'a', clock, { onProgress: (state) => seen.push(state.heartbeatAt) }),
    );
    clock.now += 5;
    await job.save({ ...job.state, page: 2 });
    clock.now += 5;
    await job.save({ ...job.state, page: 3 });
    assert.deepEqual(seen, [4_000_005, 4_000_010]);
    assert.equal((await readJobState<CountState>(kv, key))?.page, 3);
  });
});
