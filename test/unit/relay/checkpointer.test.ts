import { expect } from 'chai';
import pino from 'pino';
import { Checkpointer, type CheckpointPolicy } from '../../../src/checkpoint/checkpointer.js';
import {
  LeaseLostError,
  type CheckpointStore,
  type CheckpointWrite,
} from '../../../src/checkpoint/checkpointStore.js';
import type { Progress } from '../../../src/pipeline/ackWindow.js';

/** The store's write as the checkpointer sees it: records calls, can fail on demand. */
class RecordingStore {
  readonly writes: CheckpointWrite[] = [];
  failNext: Error | null = null;
  delayMs = 0;
  async write(_owner: string, w: CheckpointWrite): Promise<Date> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    this.writes.push(w);
    return new Date();
  }
}

const progress = (n: number, published = 1, filtered = 0): Progress => ({
  position: { token: { _data: `82${String(n).padStart(16, '0')}` }, clusterTime: null },
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
    store as unknown as CheckpointStore,
    'me',
    { mode: 'strict', maxEvents: 100, maxDelayMs: 50, heartbeatMs: 60_000, ...policy },
    { fingerprint: 'f', watch: ['a.b'] },
    pino({ level: 'silent' }),
    { onFatal },
  );
  return { cp, store };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Checkpointer', () => {
  it('strict: writes each event at once and counts it unpersisted until the write completes', async () => {
    const { cp, store } = checkpointer({ mode: 'strict' });
    store.delayMs = 20;
    cp.record(progress(1));
    expect(cp.unpersistedEvents, 'in the write').to.equal(1);
    expect(cp.bound).to.equal(1);
    await cp.changed();
    expect(cp.unpersistedEvents).to.equal(0);
    expect(store.writes.map((w) => w.token._data)).to.deep.equal(['820000000000000001']);
  });

  it('batched: coalesces until maxEvents, writing only the newest token with the summed counts', async () => {
    const { cp, store } = checkpointer({ mode: 'batched', maxEvents: 3, maxDelayMs: 10_000 });
    cp.record(progress(1));
    cp.record(progress(2));
    await tick();
    expect(store.writes).to.have.length(0);
    cp.record(progress(3, 0, 1));
    await cp.changed();
    expect(store.writes).to.have.length(1);
    expect(store.writes[0]).to.include({ published: 2, filtered: 1 });
    expect(store.writes[0]!.token._data).to.equal('820000000000000003');
  });

  it('batched: writes a waiting event within maxDelayMs even below maxEvents', async () => {
    const { cp, store } = checkpointer({ mode: 'batched', maxEvents: 1000, maxDelayMs: 30 });
    cp.record(progress(1));
    await cp.changed();
    expect(store.writes).to.have.length(1);
  });

  it('persists ticks (no events) only on the heartbeat', async () => {
    const { cp, store } = checkpointer({ mode: 'strict', heartbeatMs: 40 });
    cp.start();
    cp.record(progress(7, 0));
    await tick();
    expect(store.writes).to.have.length(0);
    await cp.changed();
    expect(store.writes.map((w) => w.token._data)).to.deep.equal(['820000000000000007']);
    await cp.stop();
  });

  it('retries a failed write and keeps the position, merged with anything newer', async () => {
    const { cp, store } = checkpointer({ mode: 'strict' });
    store.failNext = new Error('not primary');
    cp.record(progress(1));
    await cp.changed();
    cp.record(progress(2));
    await cp.flush();
    expect(store.writes.at(-1)!.token._data).to.equal('820000000000000002');
    expect(store.writes.reduce((n, w) => n + w.published, 0)).to.equal(2);
  });

  it('reports a lost lease as fatal and does not retry', async () => {
    let fatal: LeaseLostError | null = null;
    const store = new RecordingStore();
    const { cp } = checkpointer({ mode: 'strict' }, store, (e) => (fatal = e));
    store.failNext = new LeaseLostError('c', null);
    cp.record(progress(1));
    await cp.changed();
    expect(fatal).to.be.instanceOf(LeaseLostError);
    expect(store.writes).to.have.length(0);
  });
});
