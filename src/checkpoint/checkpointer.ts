/**
 * When the position is written. The ack window hands over released progress (every event up to a
 * position is acknowledged); this module persists it. One write is in flight at a time and a later
 * token subsumes every earlier one, so a write always carries the newest released position and the
 * summed counts of everything released since the previous write began.
 *
 *  - continuous (group commit, the default): a write starts as soon as acknowledged events wait and
 *    none is in flight; when it completes, the next one starts at once if more events were released
 *    meanwhile. Invariant: while acknowledged events are unpersisted, a write is in flight (or a
 *    failed one waits out its backoff) — the checkpointer never idles. At low rates this is one write
 *    per event; at high rates writes batch by themselves, bounded by the write's round trip, not by
 *    a timer.
 *  - serial: written like continuous, and `bound` is 1, so the pump publishes the next event only
 *    after the previous one is persisted: the persisted token trails the last acknowledged event by
 *    at most one event.
 *  - batched: a write starts once RELAY_CHECKPOINT_MAX_EVENTS events wait, or the oldest waiting one
 *    was released RELAY_CHECKPOINT_MAX_DELAY_MS ago.
 *  - ticks alone (post-batch resume tokens of a quiet stream, no event) are written only every
 *    RELAY_HEARTBEAT_MS in every mode: persisting each empty batch would write once per getMore.
 *
 * Snapshots (src/snapshot/): a released snapshot position carries the snapshot's cursor instead of a
 * stream position; it is written the same way (same modes, same bound), as the checkpoint's snapshot
 * progress, never as its token. While `snapshotRunning`, the first stream position written also marks
 * the snapshot done: snapshot items are read before the stream's, so a released stream position means
 * every snapshot item before it is acknowledged (the ack window may hand over only that newest one).
 *
 * The persisted position never runs ahead of an unacknowledged event: only released progress enters
 * here. A failed write is retried with backoff, merged with whatever was released meanwhile (the
 * pump's bound stops reading while events pile up); a lost lease is fatal. A failed write may still
 * have applied (its reply lost), so each write carries the counts' totals as of its position, never
 * increments: the retry is a replay.
 */
import type { Logger } from 'pino';
import type { CheckpointMode } from '../config/schema.js';
import type { Progress, Position } from '../pipeline/ackWindow.js';
import type { SnapshotCursor } from '../snapshot/snapshotPlan.js';
import { LeaseLostError, type CheckpointStore } from './checkpointStore.js';

export interface CheckpointPolicy {
  mode: CheckpointMode;
  maxEvents: number;
  maxDelayMs: number;
  heartbeatMs: number;
}

export interface WriteCounts {
  published: number;
  filtered: number;
  deadLettered: number;
}

export interface CheckpointerHooks {
  /** `position` null: the write carried snapshot progress only (`snapshot`). */
  onWrite?: (
    position: Position | null,
    writtenAt: Date,
    counts: WriteCounts,
    snapshot: SnapshotCursor | null,
  ) => void;
  onFatal: (error: LeaseLostError) => void;
}

const noCounts = (): WriteCounts => ({ published: 0, filtered: 0, deadLettered: 0 });
const total = (c: WriteCounts): number => c.published + c.filtered + c.deadLettered;
const sum = (a: WriteCounts, b: WriteCounts): WriteCounts => ({
  published: a.published + b.published,
  filtered: a.filtered + b.filtered,
  deadLettered: a.deadLettered + b.deadLettered,
});

export class Checkpointer {
  private pending: Position | null = null;
  /** The newest snapshot cursor released and not yet persisted. */
  private pendingSnapshot: SnapshotCursor | null = null;
  /** A snapshot is being copied: the next stream position written completes it (see the header). */
  snapshotRunning = false;
  private pendingCounts = noCounts();
  /** When the oldest event now waiting was released (batched mode's delay). */
  private pendingSince = 0;
  /** Events inside the write in progress: still unpersisted until it completes. */
  private writingEvents = 0;
  private writing: Promise<void> | null = null;
  private delayTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];
  private failures = 0;
  private stopped = false;
  persisted: Position | null = null;
  /** The counts the store holds (set from the checkpoint read at start); each write adds to these. */
  persistedCounts: WriteCounts = noCounts();

  constructor(
    private readonly store: Pick<CheckpointStore, 'write'>,
    private readonly owner: string,
    private readonly policy: CheckpointPolicy,
    private readonly identity: { fingerprint: string; watch: string[] },
    private readonly logger: Logger,
    private readonly hooks: CheckpointerHooks,
  ) {}

  /** Events acknowledged (or filtered) but not yet persisted, the write in progress included. */
  get unpersistedEvents(): number {
    return total(this.pendingCounts) + this.writingEvents;
  }

  /** True while a write (or a failed write's backoff) is in progress. */
  get isWriting(): boolean {
    return this.writing !== null;
  }

  /**
   * How many events the pump may hold in flight plus unpersisted, on top of its own in-flight limit:
   * 1 in serial mode, RELAY_CHECKPOINT_MAX_EVENTS in batched mode, no extra limit in continuous mode.
   */
  get bound(): number {
    if (this.policy.mode === 'serial') return 1;
    if (this.policy.mode === 'batched') return this.policy.maxEvents;
    return Infinity;
  }

  start(): void {
    this.heartbeat = setInterval(() => this.kick(true), this.policy.heartbeatMs);
    this.heartbeat.unref();
  }

  record(progress: Progress): void {
    if (total(this.pendingCounts) === 0) this.pendingSince = Date.now();
    if (progress.position.snapshot) this.pendingSnapshot = progress.position.snapshot;
    else this.pending = progress.position;
    this.pendingCounts = sum(this.pendingCounts, progress);
    this.kick(false);
  }

  /** Resolves the next time a write completes (the pump waits on this at its bound). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Persist whatever is pending, now; used at shutdown. */
  async flush(): Promise<void> {
    while (this.writing || this.pending || this.pendingSnapshot) {
      if (this.writing) await this.writing;
      else await this.writeNow();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.clearDelayTimer();
    await this.flush();
  }

  private kick(heartbeat: boolean): void {
    if (this.writing || (!this.pending && !this.pendingSnapshot) || this.stopped) return;
    const events = total(this.pendingCounts);
    // The end of a snapshot is written at once: it carries no event, and it is news.
    if (heartbeat || (events > 0 && this.policy.mode !== 'batched') || this.pendingSnapshot?.done) {
      void this.writeNow();
      return;
    }
    if (events >= this.policy.maxEvents) {
      void this.writeNow();
      return;
    }
    if (events > 0 && !this.delayTimer) {
      const wait = Math.max(0, this.pendingSince + this.policy.maxDelayMs - Date.now());
      this.delayTimer = setTimeout(() => {
        this.delayTimer = null;
        this.kick(true);
      }, wait);
    }
  }

  private clearDelayTimer(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = null;
    }
  }

  private writeNow(): Promise<void> {
    const position = this.pending;
    const snapshot = this.pendingSnapshot;
    if (!position && !snapshot) return Promise.resolve();
    const completesSnapshot = position !== null && this.snapshotRunning;
    const counts = this.pendingCounts;
    const totals = sum(this.persistedCounts, counts);
    this.pending = null;
    this.pendingSnapshot = null;
    this.pendingCounts = noCounts();
    this.writingEvents = total(counts);
    this.clearDelayTimer();
    const write = this.store
      .write(this.owner, {
        // A snapshot-only write names no token: the stand-in of its position is never stored.
        token: position?.token ?? { _data: '' },
        clusterTime: position?.clusterTime ?? null,
        ...(position ? {} : { snapshotOnly: true }),
        ...totals,
        ...this.identity,
        ...(snapshot ? { snapshot } : {}),
        ...(completesSnapshot ? { snapshotDone: true } : {}),
      })
      .then(
        (writtenAt) => {
          this.failures = 0;
          this.persistedCounts = totals;
          if (position) this.persisted = position;
          if (completesSnapshot || snapshot?.done) this.snapshotRunning = false;
          this.hooks.onWrite?.(position, writtenAt, counts, snapshot);
        },
        (error: unknown) => {
          if (error instanceof LeaseLostError) {
            this.hooks.onFatal(error);
            return;
          }
          // Put it back, merged with anything released meanwhile (which is newer), and retry.
          if (total(this.pendingCounts) === 0) this.pendingSince = Date.now();
          this.pending = this.pending ?? position;
          this.pendingSnapshot = this.pendingSnapshot ?? snapshot;
          this.pendingCounts = sum(this.pendingCounts, counts);
          this.writingEvents = 0;
          this.failures += 1;
          const delay = Math.min(10000, 100 * 2 ** Math.min(this.failures, 10));
          this.logger.warn({ err: error, retryInMs: delay }, 'checkpoint write failed; retrying');
          return new Promise<void>((resolve) => setTimeout(resolve, delay));
        },
      )
      .finally(() => {
        this.writing = null;
        this.writingEvents = 0;
        for (const w of this.waiters.splice(0)) w();
        this.kick(this.failures > 0);
      });
    this.writing = write;
    return write;
  }
}
