import type { EachBatchHandler, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Document } from 'mongodb';

import { ConsumerStoppedError, errorMessage } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { RecordProcessor } from './record-processor.js';

export interface PartitionRunnerDeps<TSchema extends Document> {
  readonly processor: RecordProcessor<TSchema>;
  readonly logger: ConsumerLogger;
  /** Aborted by `stop()`. */
  readonly signal: AbortSignal;
  readonly heartbeatIntervalMs: number;
}

/** Kafka error types after which this member may no longer own the partition. */
const REBALANCE_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

function kafkaErrorType(error: unknown): string | undefined {
  const type = typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : undefined;
}

export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

/**
 * The kafkajs `eachBatch` handler. kafkajs hands each partition's batch to one call and never runs two
 * calls for the same partition at once; different partitions run concurrently up to
 * `partitionsConsumedConcurrently`. Inside a batch, records are processed strictly one after another:
 * process, resolve, commit offset+1, next. A stop or a rebalance ends the batch after the record in hand.
 */
export function createEachBatchHandler<TSchema extends Document>(
  deps: PartitionRunnerDeps<TSchema>,
): EachBatchHandler {
  return async (payload: EachBatchPayload) => {
    const { batch, isRunning, isStale, resolveOffset } = payload;
    const { topic, partition } = batch;
    const state = { lostPartition: false };
    const heartbeat = async (): Promise<void> => {
      try {
        await payload.heartbeat();
      } catch (error) {
        if (REBALANCE_ERRORS.has(kafkaErrorType(error) ?? '')) state.lostPartition = true;
        deps.logger.debug({ err: errorMessage(error), topic, partition }, 'heartbeat failed');
      }
    };

    for (const message of batch.messages) {
      if (!isRunning() || isStale() || deps.signal.aborted || state.lostPartition) break;
      try {
        await whileHeartbeating(heartbeat, deps.heartbeatIntervalMs, () =>
          deps.processor.process(topic, partition, message, { signal: deps.signal, heartbeat }),
        );
      } catch (error) {
        if (error instanceof ConsumerStoppedError) break; // left uncommitted: redelivered later
        throw error;
      }
      resolveOffset(message.offset);
      if (!(await commit(payload, deps.logger, message, state))) break;
    }
  };
}

/**
 * Commits offset+1 of `message` through the batch payload. (`consumer.commitOffsets()` silently does
 * nothing once `stop()` has begun, which would lose the commit of the record finished during a stop.)
 * Returns false when the batch should end: a failed commit is not fatal (the seen mark makes the
 * redelivery a skipped duplicate) but after a rebalance error the partition may belong to someone else.
 */
async function commit(
  payload: EachBatchPayload,
  logger: ConsumerLogger,
  message: KafkaMessage,
  state: { lostPartition: boolean },
): Promise<boolean> {
  const { topic, partition } = payload.batch;
  const offset = nextOffset(message.offset);
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      return true;
    } catch (error) {
      const type = kafkaErrorType(error);
      const rebalance = REBALANCE_ERRORS.has(type ?? '');
      logger.warn(
        { err: errorMessage(error), type, topic, partition, offset, attempt },
        'offset commit failed; a redelivered record will be skipped as a duplicate',
      );
      if (rebalance) {
        state.lostPartition = true;
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
  return false;
}

/** Runs `work`, calling `heartbeat` every `intervalMs` until it settles (kafkajs sends one only when due). */
export async function whileHeartbeating<T>(
  heartbeat: () => Promise<void>,
  intervalMs: number,
  work: () => Promise<T>,
): Promise<T> {
  const timer = setInterval(() => void heartbeat(), intervalMs);
  timer.unref();
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
