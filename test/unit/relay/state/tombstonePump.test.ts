import { expect } from 'chai';
import pino from 'pino';
import { Checkpointer } from '../../../../src/checkpoint/checkpointer.js';
import type { CheckpointWrite } from '../../../../src/checkpoint/checkpointStore.js';
import { CHECKPOINT_MODES } from '../../../../src/config/schema.js';
import { RelayMetrics } from '../../../../src/metrics/relayMetrics.js';
import type { ItemSource } from '../../../../src/pipeline/itemSource.js';
import { Pump } from '../../../../src/pipeline/pump.js';
import type { ReadItem } from '../../../../src/pipeline/readItem.js';
import { tombstoneFor, type OutboundRecord } from '../../../../src/pipeline/toRecord.js';
import type { PublishOutcome } from '../../../../src/sink/kafkaSink.js';
import type { ConcreteStart } from '../../../../src/source/changeSource.js';

const token = (n: number) => `82${String(n).padStart(16, '0')}`;

function deleteItem(n: number): ReadItem {
  const record: OutboundRecord = {
    topic: 't',
    key: `a.b\u0000{"_id":${n}}`,
    value: `{"operationType":"delete","n":${n}}`,
    headers: { 'change-id': token(n), 'operation-type': 'delete' },
    partitionKey: Buffer.from(`a.b\u0000{"_id":${n}}`),
    size: 100,
    ns: 'a.b',
    operationType: 'delete',
  };
  return {
    kind: 'publish',
    position: { token: { _data: token(n) }, clusterTime: null },
    record,
    readAt: 0,
    tombstone: tombstoneFor(record),
  };
}

class OneBatch implements ItemSource {
  doneBytes = 0;
  private closed: (() => void) | null = null;
  constructor(private batch: ReadItem[] | null) {}
  async startingPosition(): Promise<ConcreteStart | null> {
    return { startAfter: { _data: token(0) } };
  }
  async nextBatch(): Promise<ReadItem[] | null> {
    const b = this.batch;
    this.batch = null;
    if (b) return b;
    await new Promise<void>((r) => (this.closed = r));
    return null;
  }
  done(_items: number, bytes: number): void {
    this.doneBytes += bytes;
  }
  async close(): Promise<void> {
    this.closed?.();
  }
  restartFromNow(): void {}
}

/** Kafka held by the test: each publish waits until acknowledged, by its index in publish order. */
class HeldSink {
  readonly published: OutboundRecord[] = [];
  private readonly held: ((o: PublishOutcome) => void)[] = [];
  publish(record: OutboundRecord): Promise<PublishOutcome> {
    this.published.push(record);
    return new Promise((resolve) => this.held.push(resolve));
  }
  ack(index: number): void {
    this.held[index]!('published');
  }
}

const settle = () => new Promise((r) => setImmediate(r));

describe('Pump with tombstones (RELAY_KEY=document, issue 15 item 4)', () => {
  for (const mode of CHECKPOINT_MODES) {
    it(`${mode}: sends the tombstone right after its delete, and persists the delete only once both are acknowledged`, async () => {
      const writes: CheckpointWrite[] = [];
      const store = {
        async write(_owner: string, w: CheckpointWrite): Promise<Date> {
          writes.push(w);
          return new Date();
        },
      };
      const checkpointer = new Checkpointer(
        store,
        'me',
        { mode, maxEvents: 1, maxDelayMs: 1, heartbeatMs: 60_000 },
        { fingerprint: 'f', watch: ['a.b'] },
        pino({ level: 'silent' }),
        { onFatal: () => {} },
      );
      const sink = new HeldSink();
      const del = deleteItem(1);
      const source = new OneBatch([del]);
      const pump = new Pump({
        source,
        sink,
        checkpointer,
        maxInFlight: 100,
        maxInFlightBytes: 1 << 20,
        metrics: new RelayMetrics('test'),
        logger: pino({ level: 'silent' }),
        mayPublish: () => true,
        onFatal: (e) => {
          throw e;
        },
      });
      const running = pump.run();
      await settle();
      expect(sink.published.map((r) => r.value)).to.deep.equal(['{"operationType":"delete","n":1}', null]);
      expect(sink.published[1]!.key).to.equal(sink.published[0]!.key);
      sink.ack(0);
      for (let i = 0; i < 5; i++) await settle();
      expect(writes, 'the delete is acknowledged, its tombstone is not').to.deep.equal([]);
      expect(pump.window.inFlight).to.equal(1);
      sink.ack(1);
      for (let i = 0; i < 5 && writes.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(writes.map((w) => w.token._data)).to.deep.equal([token(1)]);
      if (del.kind !== 'publish') throw new Error('unreachable');
      expect(source.doneBytes, 'the reader gets back the bytes of both records').to.equal(
        del.record.size + del.tombstone!.size,
      );
      pump.stop();
      await source.close();
      await running;
    });
  }
});
