import { expect } from 'chai';
import pino from 'pino';
import { Checkpointer, type CheckpointPolicy } from '../../../src/checkpoint/checkpointer.js';
import { LeaseLostError, type CheckpointWrite } from '../../../src/checkpoint/checkpointStore.js';
import type { Progress } from '../../../src/pipeline/ackWindow.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';

/** The store's write as the checkpointer sees it: records calls, can fail or hold a write on demand. */
class RecordingStore {
  readonly writes: CheckpointWrite[] = [];
  /** Every write started, completed or not. */
  started = 0;
  failNext: Error | null = null;
  delayMs = 0;
  /** When set, each write waits until release() is called. */
  manual = false;
  private pending: (() => void)[] = [];

  async write(_owner: string, w: CheckpointWrite): Promise<Date> {
    this.started += 1;
    if (this.manual) await new Promise<void>((r) => this.pending.push(r));
    else if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    this.writes.push(w);
    return new Date();
  }

  /** Completes the oldest held write. */
  release(): void {
    this.pending.shift()?.();
  }

  get held(): number {
    return this.pending.length;
  }
}

const token = (n: number) => ({ _data: `82${String(n).padStart(16, '0')}` });
const progress = (n: number, published = 1, filtered = 0): Progress => ({
  position: { token: token(n), clusterTime: null },
  published,
  filtered,
  deadLettered: 0,
});

function checkpointer(
  policy: Partial<CheckpointPolicy>,
  store = new RecordingStore(),
  onFatal = (_e: LeaseLostError) => {},
) {
  const cp = new Checkpointer(
    store,
    'me',
    { mode: 'continuous', maxEvents: 100, maxDelayMs: 50, heartbeatMs: 60_000, ...policy },
    { fingerprint: 'f', watch: ['a.b'] },
    pino({ level: 'silent' }),
    { onFatal },
  );
  return { cp, store };
}

const tick = () => new Promise((r) => setImmediate(r));
const SEED = chooseSeed();

/** A replayable [0, 1) generator (test/support/random.ts). */
function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

describe('Checkpointer', () => {
  describe('continuous mode (group commit)', () => {
    it('starts a write as soon as an acknowledged event waits, with no timer', () => {
      const { cp, store } = checkpointer({ mode: 'continuous', maxDelayMs: 10_000 });
      store.manual = true;
      cp.record(progress(1));
      expect(store.started, 'write started synchronously').to.equal(1);
      expect(cp.isWriting).to.equal(true);
      expect(cp.bound).to.equal(Infinity);
    });

    it('writes back to back: events released during a write all go into the very next one', async () => {
      const { cp, store } = checkpointer({ mode: 'continuous', maxDelayMs: 10_000 });
      store.manual = true;
      cp.record(progress(1));
      cp.record(progress(2));
      cp.record(progress(3, 1, 1));
      expect(store.started, 'one write in flight at a time').to.equal(1);
      expect(cp.unpersistedEvents).to.equal(4);
      const completed = cp.changed();
      store.release();
      await completed;
      expect(store.started, 'the next write started when the first completed').to.equal(2);
      expect(cp.isWriting).to.equal(true);
      store.release();
      await cp.flush();
      expect(store.writes.map((w) => [w.token._data, w.published, w.filtered])).to.deep.equal([
        [token(1)._data, 1, 0],
        [token(3)._data, 3, 1], // totals as of the position, not increments
      ]);
      expect(cp.unpersistedEvents).to.equal(0);
    });

    it(`never idles while acknowledged events are unpersisted, and each write covers exactly what was released since the previous one began (seed ${SEED})`, async () => {
      const rand = random(SEED);
      const { cp, store } = checkpointer({ mode: 'continuous', maxEvents: 3, maxDelayMs: 10_000 });
      store.manual = true;
      const releasedBeforeWrite: number[] = [];
      let released = 0;
      let next = 1;
      const check = (step: string) => {
        if (cp.unpersistedEvents > 0)
          expect(cp.isWriting, `idle with unpersisted events after ${step}`).to.equal(true);
      };
      for (let step = 0; step < 400; step++) {
        if (rand() < 0.6) {
          const startedBefore = store.started;
          const n = 1 + Math.floor(rand() * 4);
          cp.record(progress(next, n));
          released += n;
          next += 1;
          if (store.started > startedBefore) releasedBeforeWrite.push(released);
          check(`record #${step}`);
        } else if (store.held > 0) {
          const startedBefore = store.started;
          const completed = cp.changed();
          store.release();
          await completed;
          if (store.started > startedBefore) releasedBeforeWrite.push(released);
          check(`write completion #${step}`);
        }
      }
      while (store.held > 0) {
        const startedBefore = store.started;
        const completed = cp.changed();
        store.release();
        await completed;
        if (store.started > startedBefore) releasedBeforeWrite.push(released);
      }
      await cp.flush();
      // Each write carries the totals as of its position (a retry is a replay): the last one, all.
      expect(store.writes.at(-1)!.published).to.equal(released);
      expect(store.writes.at(-1)!.token._data).to.equal(token(next - 1)._data);
      // Each write carried the events released between the starts of the previous write and its own.
      store.writes.forEach((w, i) => {
        expect(w.published, `write ${i}`).to.equal(releasedBeforeWrite[i]!);
      });
    });
  });

  describe('serial mode', () => {
    it('lets the pump hold one unpersisted event at most, and writes it at once', async () => {
      const { cp, store } = checkpointer({ mode: 'serial' });
      store.delayMs = 20;
      expect(cp.bound).to.equal(1);
      cp.record(progress(1));
      expect(cp.unpersistedEvents, 'in the write').to.equal(1);
      await cp.changed();
      expect(cp.unpersistedEvents).to.equal(0);
      expect(store.writes.map((w) => w.token._data)).to.deep.equal([token(1)._data]);
    });
  });

  describe('batched mode', () => {
    it('coalesces until maxEvents, writing only the newest token with the summed counts', async () => {
      const { cp, store } = checkpointer({ mode: 'batched', maxEvents: 3, maxDelayMs: 10_000 });
      expect(cp.bound).to.equal(3);
      cp.record(progress(1));
      cp.record(progress(2));
      await tick();
      expect(store.writes).to.have.length(0);
      cp.record(progress(3, 0, 1));
      await cp.changed();
      expect(store.writes).to.have.length(1);
      expect(store.writes[0]).to.include({ published: 2, filtered: 1 });
      expect(store.writes[0]!.token._data).to.equal(token(3)._data);
    });

    it('writes a waiting event once it has waited maxDelayMs, not before', async () => {
      const { cp, store } = checkpointer({ mode: 'batched', maxEvents: 1000, maxDelayMs: 60 });
      const t0 = Date.now();
      cp.record(progress(1));
      await tick();
      expect(store.started).to.equal(0);
      await cp.changed();
      expect(Date.now() - t0).to.be.at.least(55); // a timer fires no earlier than asked (1 ms rounding)
      expect(store.writes).to.have.length(1);
    });
  });

  it('persists ticks (no events) only on the heartbeat, in every mode', async () => {
    for (const mode of ['continuous', 'serial', 'batched'] as const) {
      const { cp, store } = checkpointer({ mode, heartbeatMs: 40 });
      cp.start();
      cp.record(progress(7, 0));
      await tick();
      expect(store.writes, mode).to.have.length(0);
      await cp.changed();
      expect(
        store.writes.map((w) => w.token._data),
        mode,
      ).to.deep.equal([token(7)._data]);
      await cp.stop();
    }
  });

  it('retries a failed write and keeps the position, merged with anything newer', async () => {
    const { cp, store } = checkpointer({ mode: 'continuous' });
    store.failNext = new Error('not primary');
    cp.record(progress(1));
    await cp.changed();
    cp.record(progress(2));
    await cp.flush();
    expect(store.writes.at(-1)!.token._data).to.equal(token(2)._data);
    expect(store.writes.at(-1)!.published, 'the totals, counted once').to.equal(2);
  });

  it('adds to the counts the checkpoint held at start, the same totals on every retry', async () => {
    const { cp, store } = checkpointer({ mode: 'continuous' });
    cp.persistedCounts = { published: 40, filtered: 2, deadLettered: 1 };
    store.failNext = new Error('wtimeout: the reply was lost, the write may have applied');
    cp.record(progress(1, 3, 1));
    await cp.changed();
    await cp.flush();
    expect(store.started, 'the failed try and its retry').to.equal(2);
    expect(store.writes).to.have.length(1);
    expect(store.writes[0]).to.include({ published: 43, filtered: 3, deadLettered: 1 });
    expect(cp.persistedCounts).to.deep.equal({ published: 43, filtered: 3, deadLettered: 1 });
  });

  it('reports a lost lease as fatal and does not retry', async () => {
    let fatal: LeaseLostError | null = null;
    const store = new RecordingStore();
    const { cp } = checkpointer({ mode: 'continuous' }, store, (e) => (fatal = e));
    store.failNext = new LeaseLostError('c', null);
    cp.record(progress(1));
    await cp.changed();
    expect(fatal).to.be.instanceOf(LeaseLostError);
    expect(store.writes).to.have.length(0);
  });
});
