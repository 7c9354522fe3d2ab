/**
 * The kafkajs `eachBatch` handler and the per-partition state around it.
 *
 * kafkajs hands each partition's batch to one call and never runs two calls for the same partition at
 * once; different partitions run concurrently up to `partitionsConsumedConcurrently`. Inside a batch the
 * records are processed in offset order, in chunks of `batchSize` (one seen lookup and one mark write
 * per chunk); finished records are resolved, and committed by count, time, at the end of a caught-up
 * batch, before a pause, and when the batch is interrupted.
 *
 * Invariants:
 * - A batch never blocks waiting for a retry or an outage: the partition is paused (kafkajs fetches
 *   nothing for it) and resumed by a timer; the unresolved record is fetched again then. Other
 *   partitions keep flowing, and a rebalance never waits for a retry schedule.
 * - Each batch has an abort signal that fires on stop and as soon as a heartbeat or commit says the
 *   group is rebalancing (the partition may be someone else's): the handler in hand is told, no further
 *   record starts, and the batch returns once that handler settled (at most `handlerTimeoutMs`).
 */
import type { Consumer, EachBatchHandler, EachBatchPayload, KafkaMessage } from 'kafkajs';

import { PartitionRevokedError, errorMessage } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { ConsumerMetrics } from './metrics.js';
import { isRebalanceError, nextOffset, type OffsetCommitter } from './offsetCommitter.js';
import {
  PartitionMemory,
  type ChunkResult,
  type ChunkScope,
  type ChunkWait,
  type WaitReason,
} from './chunk.js';

/** A partition waiting before its next record, as `health()` reports it. */
export interface BlockedPartition {
  readonly topic: string;
  readonly partition: number;
  /** The record that waits. */
  readonly offset: string;
  readonly reason: WaitReason;
  /** Since when this record has been waiting. */
  readonly since: Date;
  /** When the next try is due. */
  readonly retryAt: Date;
  /** Handler calls so far (reason `handler-retry`). */
  readonly attempts?: number;
  readonly lastError: string;
}

interface PartitionState {
  readonly memory: PartitionMemory;
  blocked: BlockedPartition | undefined;
  resumeTimer: NodeJS.Timeout | undefined;
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** The state of every partition this member works on: retry memory, pauses, resume timers. */
export class PartitionStates {
  private readonly states = new Map<string, PartitionState & { topic: string; partition: number }>();

  constructor(
    private readonly metrics: ConsumerMetrics,
    private readonly groupId: string,
  ) {}

  get(topic: string, partition: number): PartitionState {
    const k = key(topic, partition);
    let state = this.states.get(k);
    if (!state) {
      state = { topic, partition, memory: new PartitionMemory(), blocked: undefined, resumeTimer: undefined };
      this.states.set(k, state);
    }
    return state;
  }

  blocked(): BlockedPartition[] {
    return [...this.states.values()].flatMap((state) => (state.blocked ? [state.blocked] : []));
  }

  /** Pauses the partition through the batch payload; a timer resumes it after `wait.delayMs`. */
  block(payload: EachBatchPayload, topic: string, partition: number, wait: ChunkWait): void {
    const state = this.get(topic, partition);
    const resume = payload.pause();
    const sameRecord = state.blocked?.offset === wait.offset;
    this.setBlocked(state, {
      topic,
      partition,
      offset: wait.offset,
      reason: wait.reason,
      since: sameRecord && state.blocked ? state.blocked.since : new Date(),
      retryAt: new Date(Date.now() + wait.delayMs),
      ...(wait.attempts === undefined ? {} : { attempts: wait.attempts }),
      lastError: wait.error,
    });
    clearTimeout(state.resumeTimer);
    state.resumeTimer = setTimeout(() => {
      state.resumeTimer = undefined;
      resume();
    }, wait.delayMs);
    state.resumeTimer.unref();
  }

  /** The partition made progress: it no longer waits. */
  unblock(topic: string, partition: number): void {
    const state = this.states.get(key(topic, partition));
    if (state?.blocked) this.setBlocked(state, undefined);
  }

  private setBlocked(state: PartitionState, blocked: BlockedPartition | undefined): void {
    if (state.blocked)
      this.metrics.blockedPartitions.dec({ group: this.groupId, reason: state.blocked.reason });
    if (blocked) this.metrics.blockedPartitions.inc({ group: this.groupId, reason: blocked.reason });
    state.blocked = blocked;
  }

  /**
   * After a rebalance: forgets the partitions no longer assigned (their next owner starts from the last
   * commit) and resumes any partition kafkajs still holds paused without a timer of ours (kafkajs keeps
   * pauses across a rebalance; a revoked-then-reassigned partition would otherwise stay paused for good).
   */
  afterRebalance(
    consumer: Pick<Consumer, 'paused' | 'resume'>,
    assigned: ReadonlyMap<string, readonly number[]>,
    forget: (topic: string, partition: number) => void,
  ): void {
    for (const [k, state] of this.states) {
      if (assigned.get(state.topic)?.includes(state.partition)) continue;
      clearTimeout(state.resumeTimer);
      this.setBlocked(state, undefined);
      this.states.delete(k);
      forget(state.topic, state.partition);
    }
    for (const { topic, partitions } of consumer.paused()) {
      const orphans = partitions.filter((partition) => !this.states.get(key(topic, partition))?.resumeTimer);
      if (orphans.length > 0) consumer.resume([{ topic, partitions: orphans }]);
    }
  }

  /** On stop: no partition is resumed any more. */
  clear(): void {
    for (const state of this.states.values()) {
      clearTimeout(state.resumeTimer);
      this.setBlocked(state, undefined);
    }
    this.states.clear();
  }
}

/** The processor as the runner sees it. */
export interface ChunkProcessor {
  processChunk(
    topic: string,
    partition: number,
    messages: readonly KafkaMessage[],
    scope: ChunkScope,
  ): Promise<ChunkResult>;
}

export interface PartitionRunnerDeps {
  readonly processor: ChunkProcessor;
  readonly committer: OffsetCommitter;
  readonly partitions: PartitionStates;
  readonly logger: ConsumerLogger;
  /** Aborted by `stop()`. */
  readonly stopSignal: AbortSignal;
  readonly heartbeatIntervalMs: number;
  /** Most records per chunk (seen lookup, handler batch, mark write). */
  readonly batchSize: number;
}

export function createEachBatchHandler(deps: PartitionRunnerDeps): EachBatchHandler {
  return async (payload: EachBatchPayload) => {
    const { batch, isRunning, isStale, resolveOffset } = payload;
    const { topic, partition } = batch;
    const { committer, partitions, logger, stopSignal } = deps;
    if (stopSignal.aborted) return;
    const state = partitions.get(topic, partition);

    const controller = new AbortController();
    const onStop = (): void => controller.abort(stopSignal.reason);
    stopSignal.addEventListener('abort', onStop, { once: true });
    const revoke = (cause: unknown): void => {
      if (controller.signal.aborted) return;
      logger.info(
        { topic, partition, err: errorMessage(cause) },
        'the group is rebalancing: the partition may be revoked; the record in hand is aborted',
      );
      controller.abort(new PartitionRevokedError(topic, partition, cause));
    };
    const heartbeat = async (): Promise<void> => {
      try {
        await payload.heartbeat();
      } catch (error) {
        if (isRebalanceError(error)) revoke(error);
        else logger.debug({ err: errorMessage(error), topic, partition }, 'heartbeat failed');
      }
    };
    const commit = async (): Promise<void> => {
      if ((await committer.commit(payload, topic, partition)) === 'revoked') revoke('offset commit refused');
    };
    const timer = setInterval(() => void heartbeat(), deps.heartbeatIntervalMs);
    timer.unref();

    let completed = true;
    try {
      for (let start = 0; start < batch.messages.length; start += deps.batchSize) {
        if (controller.signal.aborted || !isRunning() || isStale()) {
          completed = false;
          break;
        }
        const chunk = batch.messages.slice(start, start + deps.batchSize);
        const result = await deps.processor.processChunk(topic, partition, chunk, {
          signal: controller.signal,
          heartbeat,
          memory: state.memory,
        });
        if (result.done > 0) {
          const last = chunk[result.done - 1]!;
          resolveOffset(last.offset);
          committer.advance(topic, partition, nextOffset(last.offset), result.done);
        }
        if (result.wait) {
          completed = false;
          await commit();
          // No pause after a stop or a revoke: the next owner (or start) fetches the record anyway.
          if (!controller.signal.aborted) partitions.block(payload, topic, partition, result.wait);
          break;
        }
        partitions.unblock(topic, partition);
        if (result.done < chunk.length) {
          completed = false;
          break;
        }
        if (committer.isDue(topic, partition)) await commit();
      }
      const caughtUp = completed && batch.offsetLag() === '0';
      if (caughtUp || controller.signal.aborted || !isRunning() || committer.isDue(topic, partition)) {
        await commit();
      }
    } finally {
      clearInterval(timer);
      stopSignal.removeEventListener('abort', onStop);
    }
  };
}
