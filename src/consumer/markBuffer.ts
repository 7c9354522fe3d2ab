/**
 * The seen marks of a chunk on their way to MongoDB: buffered and written in bulk (one `insertMany`
 * per flush, not one write per record), and what a failed write leaves for the partition's next try.
 */
import type { ConsumerMetrics } from './metrics.js';
import type { PartitionMemory } from './chunk.js';
import type { SeenMark } from './seenStore.js';

/** The part of the seen store the processor uses. */
export interface MarkStore {
  findSeen(changeIds: readonly string[]): Promise<Set<string>>;
  writeMarks(marks: readonly SeenMark[]): Promise<void>;
}

/**
 * The marks of one chunk not written yet. Writes go in bulk: once the oldest unwritten mark is
 * `flushIntervalMs` old (so a slow handler re-runs little after a crash), and at the end of the chunk.
 * A write is awaited before the next record starts: after a crash, at most the records handled within
 * one flush interval (plus the one in hand) lack their marks. `durable` counts the records from the
 * start of the chunk whose marks are all written.
 */
export class MarkBuffer {
  durable = 0;
  private pending: Array<{ offset: string; mark: SeenMark }> = [];
  private pendingSince = 0;
  private failure: unknown;

  constructor(
    private readonly store: MarkStore,
    private readonly memory: PartitionMemory,
    private readonly metrics: ConsumerMetrics,
    private readonly topic: string,
    private readonly now: () => number,
  ) {}

  get failed(): boolean {
    return this.failure !== undefined;
  }

  add(offset: string, mark: SeenMark): void {
    if (this.pending.length === 0) this.pendingSince = this.now();
    this.pending.push({ offset, mark });
  }

  /** Writes the pending marks (of records before `upTo`) if the oldest is `flushIntervalMs` old. */
  async flushIfDue(upTo: number, flushIntervalMs: number): Promise<void> {
    if (this.failed || this.pending.length === 0) return;
    if (this.now() - this.pendingSince < flushIntervalMs) return;
    await this.write(upTo);
  }

  /** Writes the rest; all records before `upTo` are then durable. Resolves the failure, if a write failed. */
  async drain(upTo: number): Promise<unknown> {
    if (!this.failed) await this.write(upTo);
    if (this.failed) {
      // Kept for the next try: those records are not handled again, only their marks written.
      for (const p of this.pending) this.memory.unwrittenMarks.set(p.offset, p.mark);
      this.pending = [];
      return this.failure;
    }
    return undefined;
  }

  private async write(upTo: number): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) {
      try {
        await this.store.writeMarks(batch.map((p) => p.mark));
      } catch (error) {
        this.failure = error ?? new Error('writing the seen marks failed');
        this.pending = [...batch, ...this.pending];
        return;
      }
      let handled = 0;
      for (const p of batch) {
        this.memory.unwrittenMarks.delete(p.offset);
        if (p.mark.outcome === 'handled') handled++;
      }
      if (handled > 0) this.metrics.handled.inc({ topic: this.topic }, handled);
    }
    this.durable = Math.max(this.durable, upTo);
  }
}
