/**
 * When the position is written. The window hands over released progress (every event up to a position
 * is acknowledged); this module persists it:
 *  - strict:  after every event (published, dead-lettered or filtered) — the persisted token trails the
 *             last acknowledged event by at most one event, because the pump admits the next event only
 *             once the previous one is persisted;
 *  - batched: coalesced, but written as soon as RELAY_CHECKPOINT_MAX_EVENTS events are waiting or the
 *             oldest waiting one is RELAY_CHECKPOINT_MAX_DELAY_MS old;
 *  - ticks (post-batch resume tokens of a quiet stream) only every RELAY_HEARTBEAT_MS.
 * Writes are serial; a later token subsumes earlier ones. A failed write is retried with backoff and
 * blocks nothing but itself (the pump's bound stops reading meanwhile); a lost lease is fatal.
 */
import type { Logger } from 'pino';
import type { Progress, Position } from '../pipeline/ackWindow.js';
import { LeaseLostError, type CheckpointStore } from './checkpointStore.js';

export interface CheckpointPolicy {
  mode: 'strict' | 'batched';
  maxEvents: number;
  maxDelayMs: number;
  heartbeatMs: number;
}

export interface CheckpointerHooks {
  onWrite?: (
    position: Position,
    writtenAt: Date,
    counts: { published: number; filtered: number; deadLettered: number },
  ) => void;
  onFatal: (error: LeaseLostError) => void;
  onProgressLog?: (totalPublished: number) => void;
}

export class Checkpointer {
  private pending: Position | null = null;
  private pendingCounts = { published: 0, filtered: 0, deadLettered: 0 };
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

  constructor(
    private readonly store: CheckpointStore,
    private readonly owner: string,
    private readonly policy: CheckpointPolicy,
    private readonly identity: { fingerprint: string; watch: string[] },
    private readonly logger: Logger,
    private readonly hooks: CheckpointerHooks,
  ) {}

  /** Events acknowledged (or filtered) but not yet persisted. */
  get unpersistedEvents(): number {
    const c = this.pendingCounts;
    return c.published + c.filtered + c.deadLettered + this.writingEvents;
  }

  /** How many unpersisted events the pump may let build up, in flight included. */
  get bound(): number {
    return this.policy.mode === 'strict' ? 1 : this.policy.maxEvents;
  }

  start(): void {
    this.heartbeat = setInterval(() => this.kick(true), this.policy.heartbeatMs);
    this.heartbeat.unref();
  }

  record(progress: Progress): void {
    if (this.unpersistedEvents - this.writingEvents === 0) this.pendingSince = Date.now();
    this.pending = progress.position;
    this.pendingCounts.published += progress.published;
    this.pendingCounts.filtered += progress.filtered;
    this.pendingCounts.deadLettered += progress.deadLettered;
    this.kick(false);
  }

  /** Resolves the next time a write completes (the pump waits on this at its bound). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Persist whatever is pending, now; used at shutdown. */
  async flush(): Promise<void> {
    while (this.writing || this.pending) {
      if (this.writing) await this.writing;
      else await this.writeNow();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.delayTimer) clearTimeout(this.delayTimer);
    await this.flush();
  }

  private kick(heartbeat: boolean): void {
    if (this.writing || !this.pending || this.stopped) return;
    const events = this.unpersistedEvents - this.writingEvents;
    if (events >= this.bound || heartbeat) {
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
    // Ticks alone wait for the heartbeat: persisting every empty batch would write once per getMore.
  }

  private writeNow(): Promise<void> {
    const position = this.pending;
    if (!position) return Promise.resolve();
    const counts = this.pendingCounts;
    this.pending = null;
    this.pendingCounts = { published: 0, filtered: 0, deadLettered: 0 };
    this.writingEvents = counts.published + counts.filtered + counts.deadLettered;
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = null;
    }
    const write = this.store
      .write(this.owner, {
        token: position.token,
        clusterTime: position.clusterTime,
        ...counts,
        ...this.identity,
      })
      .then(
        (writtenAt) => {
          this.failures = 0;
          this.persisted = position;
          this.hooks.onWrite?.(position, writtenAt, counts);
        },
        (error: unknown) => {
          if (error instanceof LeaseLostError) {
            this.hooks.onFatal(error);
            return;
          }
          // Put it back (merging with anything newer) and retry with backoff.
          this.writingEvents = 0;
          this.pending = this.pending ?? position;
          this.pendingCounts = {
            published: this.pendingCounts.published + counts.published,
            filtered: this.pendingCounts.filtered + counts.filtered,
            deadLettered: this.pendingCounts.deadLettered + counts.deadLettered,
          };
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
        if (this.failures > 0) this.kick(true);
        else this.kick(false);
      });
    this.writing = write;
    return write;
  }
}
