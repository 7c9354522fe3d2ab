/**
 * Offset commits by count and time rather than per record.
 *
 * Invariant: an offset is handed to `advance()` only when every record before it is dealt with and its
 * seen mark is written, so a committed offset never skips a record; a commit that is late or lost only
 * makes Kafka deliver records again, which their marks turn into skipped duplicates.
 */
import type { EachBatchPayload } from 'kafkajs';

import { errorMessage } from './errors.js';
import type { ConsumerLogger } from './logging.js';

export interface CommitPolicy {
  /** Commit once this many records of a partition are done since its last commit. */
  readonly everyRecords: number;
  /** ... or once the oldest of them has waited this long (ms). */
  readonly intervalMs: number;
}

/** Kafka error types after which this member may no longer own the partition. */
export const REBALANCE_ERRORS: ReadonlySet<string> = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

export function kafkaErrorType(error: unknown): string | undefined {
  const type = typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : undefined;
}

export function isRebalanceError(error: unknown): boolean {
  return REBALANCE_ERRORS.has(kafkaErrorType(error) ?? '');
}

export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

interface Pending {
  offset: string;
  records: number;
  since: number;
}

export type CommitResult = 'committed' | 'nothing' | 'revoked' | 'failed';

export class OffsetCommitter {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly policy: CommitPolicy,
    private readonly logger: ConsumerLogger,
    private readonly now: () => number = Date.now,
  ) {}

  private static key(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  /** Records up to (not including) `offset` of the partition are done; `records` more of them. */
  advance(topic: string, partition: number, offset: string, records: number): void {
    const key = OffsetCommitter.key(topic, partition);
    const current = this.pending.get(key);
    if (current) {
      current.offset = offset;
      current.records += records;
    } else {
      this.pending.set(key, { offset, records, since: this.now() });
    }
  }

  /** The offset waiting to be committed for the partition, if any. */
  pendingOffset(topic: string, partition: number): string | undefined {
    return this.pending.get(OffsetCommitter.key(topic, partition))?.offset;
  }

  isDue(topic: string, partition: number): boolean {
    const current = this.pending.get(OffsetCommitter.key(topic, partition));
    if (!current) return false;
    return (
      current.records >= this.policy.everyRecords || this.now() - current.since >= this.policy.intervalMs
    );
  }

  /** Forgets a partition this member no longer owns (its next owner starts from the last commit). */
  forget(topic: string, partition: number): void {
    this.pending.delete(OffsetCommitter.key(topic, partition));
  }

  /**
   * Commits the partition's pending offset through the batch payload (`consumer.commitOffsets()` does
   * nothing once a stop has begun, which would lose the commit of the records finished during it).
   * A failed commit is not fatal; after a rebalance error the partition may belong to someone else.
   */
  async commit(payload: EachBatchPayload, topic: string, partition: number): Promise<CommitResult> {
    const key = OffsetCommitter.key(topic, partition);
    const current = this.pending.get(key);
    if (!current) return 'nothing';
    try {
      await payload.commitOffsetsIfNecessary({
        topics: [{ topic, partitions: [{ partition, offset: current.offset }] }],
      });
      if (this.pending.get(key) === current) this.pending.delete(key);
      return 'committed';
    } catch (error) {
      const type = kafkaErrorType(error);
      this.logger.warn(
        { err: errorMessage(error), type, topic, partition, offset: current.offset },
        'offset commit failed; records after the last commit come again and are skipped as duplicates',
      );
      if (isRebalanceError(error)) {
        this.pending.delete(key);
        return 'revoked';
      }
      return 'failed';
    }
  }
}
