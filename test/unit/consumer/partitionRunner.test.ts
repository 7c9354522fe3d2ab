import { expect } from 'chai';
import type { Batch, EachBatchPayload, KafkaMessage, Offsets } from 'kafkajs';
import { Registry } from 'prom-client';

import { ConsumerStoppedError, PartitionRevokedError } from '../../../src/consumer/errors.js';
import type { ConsumerLogger } from '../../../src/consumer/logging.js';
import { ConsumerMetrics } from '../../../src/consumer/metrics.js';
import { OffsetCommitter } from '../../../src/consumer/offsetCommitter.js';
import {
  PartitionStates,
  createEachBatchHandler,
  type ChunkProcessor,
} from '../../../src/consumer/partitionRunner.js';
import type { ChunkResult, ChunkScope } from '../../../src/consumer/chunk.js';

const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };

function message(offset: number): KafkaMessage {
  return { key: null, value: null, headers: {}, offset: String(offset), timestamp: '0', attributes: 0 };
}

/** A batch payload that records what the runner resolves, commits and pauses (no broker involved). */
function payload(
  offsets: number[],
  options: { highWatermark?: number; heartbeat?: () => Promise<void> } = {},
) {
  const log: string[] = [];
  const last = offsets[offsets.length - 1]!;
  const highWatermark = options.highWatermark ?? last + 1;
  const batch = {
    topic: 't',
    partition: 4,
    messages: offsets.map(message),
    offsetLag: () => String(highWatermark - 1 - last),
  } as unknown as Batch;
  const value = {
    batch,
    resolveOffset: (offset: string) => log.push(`resolve ${offset}`),
    heartbeat: options.heartbeat ?? (async () => undefined),
    pause: () => {
      log.push('pause');
      return () => log.push('resume');
    },
    commitOffsetsIfNecessary: async (offsets?: Offsets) => {
      const partition = offsets?.topics[0]?.partitions[0];
      log.push(`commit ${partition?.partition}@${partition?.offset}`);
    },
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => true,
    isStale: () => false,
  } satisfies EachBatchPayload;
  return { value, log };
}

/** A processor that answers each chunk with the next scripted result (default: all done). */
function processor(
  script: Array<(messages: readonly KafkaMessage[], scope: ChunkScope) => Promise<ChunkResult>> = [],
) {
  const chunks: string[][] = [];
  const fake: ChunkProcessor = {
    processChunk: async (_topic, _partition, messages, scope) => {
      chunks.push(messages.map((m) => m.offset));
      const step = script.shift();
      return step ? step(messages, scope) : { done: messages.length };
    },
  };
  return { fake, chunks };
}

function deps(
  proc: ChunkProcessor,
  overrides: { batchSize?: number; stop?: AbortController; everyRecords?: number } = {},
) {
  const metrics = new ConsumerMetrics(new Registry());
  const partitions = new PartitionStates(metrics, 'g');
  return {
    partitions,
    metrics,
    value: {
      processor: proc,
      committer: new OffsetCommitter(
        { everyRecords: overrides.everyRecords ?? 1_000, intervalMs: 60_000 },
        silent,
      ),
      partitions,
      logger: silent,
      stopSignal: (overrides.stop ?? new AbortController()).signal,
      heartbeatIntervalMs: 10,
      batchSize: overrides.batchSize ?? 500,
    },
  };
}

describe('consumer/partitionRunner', () => {
  describe('createEachBatchHandler', () => {
    it('hands the records over in chunks of batchSize, resolves each finished chunk, and commits once caught up', async () => {
      const { fake, chunks } = processor();
      const { value, log } = payload([5, 6, 7, 8, 9]);
      await createEachBatchHandler(deps(fake, { batchSize: 2 }).value)(value);
      expect(chunks).to.deep.equal([['5', '6'], ['7', '8'], ['9']]);
      expect(log).to.deep.equal(['resolve 6', 'resolve 8', 'resolve 9', 'commit 4@10']);
    });

    it('does not commit at the end of a batch that is behind the partition end, unless a count is due', async () => {
      const behind = payload([1, 2, 3], { highWatermark: 100 });
      await createEachBatchHandler(deps(processor().fake).value)(behind.value);
      expect(behind.log).to.deep.equal(['resolve 3']);

      const counted = payload([1, 2, 3, 4], { highWatermark: 100 });
      await createEachBatchHandler(deps(processor().fake, { batchSize: 2, everyRecords: 2 }).value)(
        counted.value,
      );
      expect(counted.log).to.deep.equal(['resolve 2', 'commit 4@3', 'resolve 4', 'commit 4@5']);
    });

    it('pauses the partition instead of waiting when a record must wait, and a timer resumes it', async () => {
      const { fake, chunks } = processor([
        async () => ({
          done: 1,
          wait: { reason: 'handler-retry', delayMs: 30, error: '503', offset: '2', attempts: 1 },
        }),
      ]);
      const { value, log } = payload([1, 2, 3], { highWatermark: 100 });
      const d = deps(fake, { batchSize: 2 });
      const started = Date.now();
      await createEachBatchHandler(d.value)(value);
      expect(Date.now() - started, 'the batch returned without waiting').to.be.lessThan(30);
      expect(chunks).to.deep.equal([['1', '2']]);
      expect(log).to.deep.equal(['resolve 1', 'commit 4@2', 'pause']);
      expect(d.partitions.blocked()).to.have.length(1);
      expect(d.partitions.blocked()[0]).to.deep.include({
        topic: 't',
        partition: 4,
        offset: '2',
        reason: 'handler-retry',
        attempts: 1,
      });
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(log.at(-1)).to.equal('resume');
    });

    it('keeps the first wait time of a record across repeated waits, and clears it once the record is done', async () => {
      const wait = { reason: 'mongodb' as const, delayMs: 1, error: 'down', offset: '1' };
      const d = deps(
        processor([
          async () => ({ done: 0, wait }),
          async () => ({ done: 0, wait }),
          async () => ({ done: 1 }),
        ]).fake,
      );
      const handler = createEachBatchHandler(d.value);
      await handler(payload([1], { highWatermark: 100 }).value);
      const since = d.partitions.blocked()[0]!.since;
      await new Promise((resolve) => setTimeout(resolve, 5));
      await handler(payload([1], { highWatermark: 100 }).value);
      expect(d.partitions.blocked()[0]!.since).to.equal(since);
      await handler(payload([1], { highWatermark: 100 }).value);
      expect(d.partitions.blocked()).to.deep.equal([]);
    });

    it('aborts the record in hand when a heartbeat says the group is rebalancing, and starts no other chunk', async () => {
      let reason: unknown;
      const { fake, chunks } = processor([
        (_messages, scope) =>
          new Promise((resolve) =>
            scope.signal.addEventListener('abort', () => {
              reason = scope.signal.reason;
              resolve({ done: 0 });
            }),
          ),
      ]);
      const rebalancing = Object.assign(new Error('The group is rebalancing'), {
        type: 'REBALANCE_IN_PROGRESS',
      });
      const { value, log } = payload([1, 2, 3], {
        heartbeat: async () => {
          throw rebalancing;
        },
      });
      await createEachBatchHandler(deps(fake, { batchSize: 1 }).value)(value);
      expect(reason).to.be.instanceOf(PartitionRevokedError);
      expect(chunks).to.deep.equal([['1']]);
      expect(log).to.deep.equal([]);
    });

    it('aborts the record in hand on stop with ConsumerStoppedError, and commits what finished', async () => {
      const stop = new AbortController();
      let reason: unknown;
      const { fake, chunks } = processor([
        async () => ({ done: 1 }),
        (_messages, scope) => {
          setTimeout(() => stop.abort(new ConsumerStoppedError()), 5);
          return new Promise((resolve) =>
            scope.signal.addEventListener('abort', () => {
              reason = scope.signal.reason;
              resolve({ done: 1 }); // the handler in hand still finished
            }),
          );
        },
      ]);
      const { value, log } = payload([1, 2, 3], { highWatermark: 100 });
      await createEachBatchHandler(deps(fake, { batchSize: 1, stop }).value)(value);
      expect(reason).to.be.instanceOf(ConsumerStoppedError);
      expect(chunks).to.deep.equal([['1'], ['2']]);
      expect(log).to.deep.equal(['resolve 1', 'resolve 2', 'commit 4@3']);
    });
  });

  describe('PartitionStates.afterRebalance', () => {
    it('forgets revoked partitions and resumes partitions kafkajs keeps paused without a timer of ours', async () => {
      const metrics = new ConsumerMetrics(new Registry());
      const states = new PartitionStates(metrics, 'g');
      const { value } = payload([1]);
      states.block(value, 't', 4, { reason: 'mongodb', delayMs: 60_000, error: 'down', offset: '1' });
      states.get('t', 5);
      const resumed: string[] = [];
      const forgotten: string[] = [];
      states.afterRebalance(
        {
          paused: () => [{ topic: 't', partitions: [4, 7] }],
          resume: (topics) =>
            void resumed.push(...topics.flatMap((t) => (t.partitions ?? []).map((p) => `${t.topic}/${p}`))),
        },
        new Map([['t', [4]]]),
        (topic, partition) => forgotten.push(`${topic}/${partition}`),
      );
      expect(forgotten).to.deep.equal(['t/5']);
      expect(resumed, 'partition 7: paused before the rebalance, no timer').to.deep.equal(['t/7']);
      expect(states.blocked().map((b) => b.partition)).to.deep.equal([4]);
      states.clear();
      expect(states.blocked()).to.deep.equal([]);
    });
  });
});
