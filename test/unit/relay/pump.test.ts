import { expect } from 'chai';
import pino from 'pino';
import { Checkpointer, type CheckpointPolicy } from '../../../src/checkpoint/checkpointer.js';
import type { CheckpointWrite } from '../../../src/checkpoint/checkpointStore.js';
import type { CheckpointMode } from '../../../src/config/schema.js';
import { RelayMetrics } from '../../../src/metrics/relayMetrics.js';
import type { ItemSource } from '../../../src/pipeline/itemSource.js';
import { Pump } from '../../../src/pipeline/pump.js';
import type { ReadItem } from '../../../src/pipeline/readItem.js';
import type { OutboundRecord } from '../../../src/pipeline/toRecord.js';
import type { PublishOutcome } from '../../../src/sink/kafkaSink.js';
import type { ConcreteStart } from '../../../src/source/changeSource.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';

const SEED = chooseSeed();

/** A replayable [0, 1) generator (test/support/random.ts). */
function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

const key = (n: number) => `82${String(n).padStart(16, '0')}`;
const seqOf = (k: string) => Number(k.slice(2));

function item(n: number, size = 100): ReadItem {
  const record: OutboundRecord = {
    topic: 't',
    key: key(n),
    value: 'v',
    headers: {},
    partitionKey: Buffer.from(String(n % 3)),
    size,
    ns: 'a.b',
    operationType: 'insert',
  };
  return { kind: 'publish', position: { token: { _data: key(n) }, clusterTime: null }, record, readAt: 0 };
}

/** Hands out the given items one batch at a time, then waits until closed. */
class ListSource implements ItemSource {
  doneItems = 0;
  private closed: (() => void) | null = null;
  constructor(private readonly batches: ReadItem[][]) {}
  async startingPosition(): Promise<ConcreteStart | null> {
    return { startAfter: { _data: key(0) } };
  }
  async nextBatch(): Promise<ReadItem[] | null> {
    const b = this.batches.shift();
    if (b) return b;
    await new Promise<void>((r) => (this.closed = r));
    return null;
  }
  done(items: number): void {
    this.doneItems += items;
  }
  async close(): Promise<void> {
    this.closed?.();
  }
  restartFromNow(): void {}
}

/** Kafka as the pump sees it: publishes are held until the test acknowledges them, in any order. */
class HeldSink {
  readonly published: number[] = [];
  readonly acked = new Set<number>();
  private readonly held = new Map<number, (o: PublishOutcome) => void>();
  publish(record: OutboundRecord): Promise<PublishOutcome> {
    const n = seqOf(record.key);
    this.published.push(n);
    return new Promise((resolve) => this.held.set(n, resolve));
  }
  get waiting(): number[] {
    return [...this.held.keys()];
  }
  ack(n: number): void {
    this.acked.add(n);
    this.held.get(n)!('published');
    this.held.delete(n);
  }
}

/** A checkpoint store whose writes complete when the test says so, and which logs what each one saw. */
class HeldStore {
  readonly writes: CheckpointWrite[] = [];
  private readonly pending: (() => void)[] = [];
  onStart: (w: CheckpointWrite) => void = () => {};
  async write(_owner: string, w: CheckpointWrite): Promise<Date> {
    this.onStart(w);
    await new Promise<void>((r) => this.pending.push(r));
    this.writes.push(w);
    return new Date();
  }
  get held(): number {
    return this.pending.length;
  }
  complete(): void {
    this.pending.shift()?.();
  }
}

const settle = () => new Promise((r) => setImmediate(r));

function pumpWith(
  mode: CheckpointMode,
  source: ItemSource,
  o: { maxInFlight?: number; maxInFlightBytes?: number; policy?: Partial<CheckpointPolicy> } = {},
) {
  const sink = new HeldSink();
  const store = new HeldStore();
  const checkpointer = new Checkpointer(
    store,
    'me',
    { mode, maxEvents: 1000, maxDelayMs: 10, heartbeatMs: 60_000, ...o.policy },
    { fingerprint: 'f', watch: ['a.b'] },
    pino({ level: 'silent' }),
    { onFatal: () => {} },
  );
  const pump = new Pump({
    source,
    sink,
    checkpointer,
    maxInFlight: o.maxInFlight ?? 2000,
    maxInFlightBytes: o.maxInFlightBytes ?? 1 << 30,
    metrics: new RelayMetrics('test'),
    logger: pino({ level: 'silent' }),
    mayPublish: () => true,
    onFatal: (e) => {
      throw e;
    },
  });
  return { pump, sink, store, checkpointer };
}

describe('Pump', () => {
  it(`continuous: pipelines publishing, and never persists past an unacknowledged event whatever the ack order (seed ${SEED})`, async () => {
    const rand = random(SEED);
    const n = 300;
    const source = new ListSource([Array.from({ length: n }, (_, i) => item(i + 1))]);
    const { pump, sink, store } = pumpWith('continuous', source, { maxInFlight: 64 });
    store.onStart = (w) => {
      const upTo = seqOf(w.token._data);
      for (let k = 1; k <= upTo; k++)
        expect(sink.acked.has(k), `write of ${upTo} before ${k} was acked`).to.equal(true);
    };
    const running = pump.run();
    await settle();
    expect(sink.published.length, 'published before any acknowledgement').to.equal(64);
    while (store.writes.at(-1)?.token._data !== key(n)) {
      const waiting = sink.waiting;
      if (waiting.length > 0 && rand() < 0.7) sink.ack(waiting[Math.floor(rand() * waiting.length)]!);
      else if (store.held > 0) store.complete();
      await settle();
    }
    expect(sink.published).to.have.length(n);
    expect(store.writes.at(-1)!.published, 'the totals at the last write').to.equal(n);
    expect(store.writes.length, 'group commit: fewer writes than events').to.be.lessThan(n);
    pump.stop();
    await source.close();
    await running;
  });

  it('serial: publishes the next event only once the previous one is persisted', async () => {
    const source = new ListSource([[item(1), item(2), item(3)]]);
    const { pump, sink, store } = pumpWith('serial', source);
    const running = pump.run();
    for (let k = 1; k <= 3; k++) {
      await settle();
      expect(sink.published, `before event ${k} is persisted`).to.deep.equal(
        Array.from({ length: k }, (_, i) => i + 1),
      );
      sink.ack(k);
      await settle();
      expect(sink.published, 'acknowledged but not yet persisted').to.have.length(k);
      store.complete();
    }
    await settle();
    expect(store.writes.map((w) => w.token._data)).to.deep.equal([key(1), key(2), key(3)]);
    pump.stop();
    await source.close();
    await running;
  });

  it('counts acknowledged-but-unpersisted events against RELAY_MAX_IN_FLIGHT (the duplicate bound after a crash)', async () => {
    const source = new ListSource([Array.from({ length: 10 }, (_, i) => item(i + 1))]);
    const { pump, sink, store } = pumpWith('continuous', source, { maxInFlight: 4 });
    const running = pump.run();
    await settle();
    expect(sink.published).to.deep.equal([1, 2, 3, 4]);
    for (const k of [1, 2, 3, 4]) sink.ack(k);
    await settle();
    expect(store.held, 'one write in flight covering 1..').to.equal(1);
    expect(sink.published, 'nothing admitted while 4 events are unpersisted').to.have.length(4);
    store.complete();
    await settle();
    // The first write covered only event 1 (released alone); 2-4 are in the second write now.
    expect(sink.published.length).to.equal(5);
    pump.stop();
    await source.close();
    await running;
  });

  it('pauses at RELAY_MAX_IN_FLIGHT_BYTES; a record larger than the limit still goes, then holds the rest', async () => {
    const source = new ListSource([
      [item(1, 100), item(2, 100), item(3, 100), item(4, 100)],
      [item(5, 10_000), item(6, 100)],
    ]);
    const { pump, sink, store } = pumpWith('continuous', source, { maxInFlightBytes: 250 });
    const running = pump.run();
    await settle();
    expect(sink.published, '300 bytes in flight >= 250').to.deep.equal([1, 2, 3]);
    for (const k of [1, 2, 3]) sink.ack(k);
    await settle();
    expect(sink.published, 'admitted while under the limit').to.deep.equal([1, 2, 3, 4, 5]);
    sink.ack(4);
    await settle();
    expect(sink.published, '10,000 bytes still in flight').to.have.length(5);
    sink.ack(5);
    await settle();
    expect(sink.published).to.deep.equal([1, 2, 3, 4, 5, 6]);
    while (store.held > 0) {
      store.complete();
      await settle();
    }
    pump.stop();
    await source.close();
    await running;
  });
});
