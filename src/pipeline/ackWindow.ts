/**
 * The one place that decides the safe checkpoint: "the newest position whose item, and every item
 * before it, is done". Items are admitted in stream order; a change is done when Kafka acknowledged it
 * (or its dead-letter record); a filtered change or a token-only tick is done on admission. Kafka may
 * acknowledge out of order across partitions, so done-ness is tracked per item and only the
 * contiguous done prefix is released.
 */
import type { Timestamp } from 'mongodb';
import type { ResumeToken } from '../source/resumeToken.js';
import type { SnapshotCursor } from '../snapshot/snapshotPlan.js';

export interface Position {
  token: ResumeToken;
  /** Cluster time of the newest change at or before this position (ticks keep the last one). */
  clusterTime: Timestamp | null;
  /**
   * Set on the items of a snapshot (src/snapshot/): the snapshot's progress after this item. Its
   * `token` is then only a stand-in — such a position never moves the stream's checkpoint.
   */
  snapshot?: SnapshotCursor;
  /**
   * The multi-document MongoDB transaction of the change at this position (see
   * source/mongoTransaction.ts); absent outside one, and on ticks. Exactly-once keeps a transaction's
   * records in one Kafka transaction by it.
   */
  transaction?: string;
}

/** What a released prefix adds to the checkpoint. */
export interface Progress {
  position: Position;
  published: number;
  filtered: number;
  deadLettered: number;
}

type Outcome = 'published' | 'filtered' | 'dead-lettered' | 'tick';

interface Slot {
  position: Position;
  outcome: Outcome | null;
}

export class AckWindow {
  private readonly slots: Slot[] = [];
  private head = 0;
  private pendingCount = 0;

  /** Items admitted and not yet done (the in-flight events). */
  get inFlight(): number {
    return this.pendingCount;
  }

  /** Admit an item still waiting for Kafka; returns its handle for done(). */
  admit(position: Position): Slot {
    const slot: Slot = { position, outcome: null };
    this.slots.push(slot);
    this.pendingCount += 1;
    return slot;
  }

  /** Admit an item that needs no acknowledgement (filtered change, tick). */
  admitDone(position: Position, outcome: 'filtered' | 'tick'): void {
    this.slots.push({ position, outcome });
  }

  done(slot: Slot, outcome: 'published' | 'dead-lettered'): void {
    if (slot.outcome !== null) throw new Error('an item was acknowledged twice');
    slot.outcome = outcome;
    this.pendingCount -= 1;
  }

  /** Release the contiguous done prefix; null if nothing new is safe. */
  release(): Progress | null {
    let published = 0;
    let filtered = 0;
    let deadLettered = 0;
    let last: Slot | undefined;
    while (this.head < this.slots.length) {
      const slot = this.slots[this.head]!;
      if (slot.outcome === null) break;
      if (slot.outcome === 'published') published += 1;
      else if (slot.outcome === 'filtered') filtered += 1;
      else if (slot.outcome === 'dead-lettered') deadLettered += 1;
      last = slot;
      this.head += 1;
    }
    if (!last) return null;
    this.compact();
    return { position: last.position, published, filtered, deadLettered };
  }

  // Drop released slots now and then, so the array does not grow without bound.
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.head = 0;
    }
  }
}

export type AckSlot = Slot;
