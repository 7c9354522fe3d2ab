import { expect } from 'chai';
import type { Batch, EachBatchPayload, KafkaMessage, Offsets } from 'kafkajs';

import { ConsumerStoppedError } from '../../../src/consumer/errors.js';
import type { ConsumerLogger } from '../../../src/consumer/logging.js';
import {
  createEachBatchHandler,
  nextOffset,
  whileHeartbeating,
} from '../../../src/consumer/partition-runner.js';
import type { RecordProcessor } from '../../../src/consumer/record-processor.js';

const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };

function message(offset: number): KafkaMessage {
  return { key: null, value: null, headers: {}, offset: String(offset), timestamp: '0', attributes: 0 };
}

/** A batch payload that records what the runner resolves and commits (no broker involved). */
function payload(offsets: number[], running: () => boolean = () => true) {
  const log: string[] = [];
  const batch = { topic: 't', partition: 4, messages: offsets.map(message) } as unknown as Batch;
  const value = {
    batch,
    resolveOffset: (offset: string) => log.push(`resolve ${offset}`),
    heartbeat: async () => undefined,
    pause: () => () => undefined,
    commitOffsetsIfNecessary: async (offsets?: Offsets) => {
      const partition = offsets?.topics[0]?.partitions[0];
      log.push(`commit ${partition?.partition}@${partition?.offset}`);
    },
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: running,
    isStale: () => false,
  } satisfies EachBatchPayload;
  return { value, log };
}

function processor(process: (offset: string) => Promise<void>) {
  return {
    process: async (_t: string, _p: number, m: KafkaMessage) => {
      await process(m.offset);
      return 'handled' as const;
    },
  } as unknown as RecordProcessor<never>;
}

describe('consumer/partition-runner', () => {
  it('nextOffset adds one without losing 64-bit precision', () => {
    expect(nextOffset('41')).to.equal('42');
    expect(nextOffset('9007199254740993')).to.equal('9007199254740994');
  });

  describe('createEachBatchHandler', () => {
    it('processes records one at a time in order, committing offset+1 after each', async () => {
      const { value, log } = payload([5, 6, 7]);
      const order: string[] = [];
      const handler = createEachBatchHandler({
        processor: processor(async (offset) => {
          order.push(`start ${offset}`);
          await new Promise((resolve) => setTimeout(resolve, 5));
          order.push(`end ${offset}`);
        }),
        logger: silent,
        signal: new AbortController().signal,
        heartbeatIntervalMs: 1_000,
      });
      await handler(value);
      expect(order).to.deep.equal(['start 5', 'end 5', 'start 6', 'end 6', 'start 7', 'end 7']);
      expect(log).to.deep.equal([
        'resolve 5',
        'commit 4@6',
        'resolve 6',
        'commit 4@7',
        'resolve 7',
        'commit 4@8',
      ]);
    });

    it('leaves a record interrupted by stop uncommitted and ends the batch', async () => {
      const { value, log } = payload([1, 2, 3]);
      const handler = createEachBatchHandler({
        processor: processor(async (offset) => {
          if (offset === '2') throw new ConsumerStoppedError();
        }),
        logger: silent,
        signal: new AbortController().signal,
        heartbeatIntervalMs: 1_000,
      });
      await handler(value);
      expect(log).to.deep.equal(['resolve 1', 'commit 4@2']);
    });

    it('finishes the record in hand but starts no other once the consumer stops running', async () => {
      let running = true;
      const { value, log } = payload([1, 2, 3], () => running);
      const handler = createEachBatchHandler({
        processor: processor(async () => {
          running = false;
        }),
        logger: silent,
        signal: new AbortController().signal,
        heartbeatIntervalMs: 1_000,
      });
      await handler(value);
      expect(log).to.deep.equal(['resolve 1', 'commit 4@2']);
    });
  });

  describe('whileHeartbeating', () => {
    it('heartbeats while the work runs and stops afterwards', async () => {
      let beats = 0;
      await whileHeartbeating(
        async () => {
          beats++;
        },
        10,
        () => new Promise((resolve) => setTimeout(resolve, 75)),
      );
      const during = beats;
      await new Promise((resolve) => setTimeout(resolve, 40));
      expect(during).to.be.greaterThanOrEqual(4);
      expect(beats).to.equal(during);
    });
  });
});
