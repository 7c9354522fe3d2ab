/**
 * What the partition runner and the record processor exchange for each chunk of one partition's
 * records: the scope the runner lends (abort signal, heartbeat, the partition's memory), the result
 * (how many records may be committed, or why and how long to wait), and what the partition remembers
 * between chunks and across a pause.
 */
import type { DeadLetterInfo } from './deadLetter.js';
import type { SeenMark } from './seenStore.js';

/** What one partition remembers between chunks and across a pause. Owned by the partition runner. */
export class PartitionMemory {
  /** The record (or batch, by its first offset) whose handler failed and waits for its next attempt. */
  retry: { firstOffset: string; attempts: number; firstFailureAt: number; lastError: string } | undefined;
  /** Consecutive failures of MongoDB or the dead-letter publish (sets the outage backoff). */
  outageFailures = 0;
  /** Records dealt with whose marks could not be written yet, by offset. */
  readonly unwrittenMarks = new Map<string, SeenMark>();
  /** Records the handler gave up on whose dead letter could not be published yet, by offset. */
  readonly unpublishedDeadLetters = new Map<string, DeadLetterInfo>();
}

export type WaitReason = 'handler-retry' | 'mongodb' | 'dead-letter-publish';

/** Why and how long the partition must wait before its next record. */
export interface ChunkWait {
  readonly reason: WaitReason;
  readonly delayMs: number;
  readonly error: string;
  /** The record that waits. */
  readonly offset: string;
  /** For handler retries: the calls made so far. */
  readonly attempts?: number;
}

export interface ChunkResult {
  /** Records from the start of the chunk that are finished, marks written: they may be committed. */
  readonly done: number;
  readonly wait?: ChunkWait;
}

/** What the partition runner lends the processor for one chunk. */
export interface ChunkScope {
  /** Aborted on stop and when the partition is revoked. */
  readonly signal: AbortSignal;
  heartbeat(): Promise<void>;
  readonly memory: PartitionMemory;
}
