/**
 * Holding the stream's lease: acquire (waiting for a live holder, or refusing), renew every few seconds,
 * and fence ourselves — once the lease is lost, or has run out because it could not be renewed in time,
 * mayPublish() turns false at once and the owner is told to stop.
 *
 * Two clocks, never mixed: the SERVER's decides expiry for everyone (the store writes renewal times
 * with `$currentDate` and compares with `$$NOW`); our own "may I still publish" deadline runs on the
 * MONOTONIC clock (performance.now), which wall-clock steps (NTP, a wrong clock) do not move. The
 * deadline is counted from the moment the acquire/renew request was SENT, which is no later than the
 * server's renewal time, so it never outlasts the lease the server granted.
 *
 * Release is safe against our own stragglers: it stops the renewer and waits for a renewal in flight
 * before it deletes the lease, so no late renewal of ours can find the lease gone and report it "lost".
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LeaseHeldError, LeaseLostError, type CheckpointStore, type LeaseInfo } from './checkpointStore.js';

/** Raised when an event is about to be published without a valid lease (expired before renewal). */
export class LeaseNotHeldError extends Error {
  constructor() {
    super(
      'the lease of this checkpoint is no longer held (it could not be renewed in time); refusing to publish',
    );
    this.name = 'LeaseNotHeldError';
  }
}

export interface LeaseOptions {
  ttlMs: number;
  renewMs: number;
  whenHeld: 'wait' | 'exit';
}

/** The lease's view of the store (a structural subset, so tests can stand in for it). */
export type LeaseStore = Pick<
  CheckpointStore,
  'checkpointId' | 'acquireLease' | 'renewLease' | 'releaseLease'
>;

export class LeaseKeeper {
  readonly owner: string;
  readonly host = hostname();
  /** Monotonic time (ms) until which we may publish. */
  private deadline = 0;
  private lost = false;
  private renewing = false;
  private renewal: Promise<void> | null = null;
  private wakeRenewer: (() => void) | null = null;
  private waitingFor: string | null = null;

  constructor(
    private readonly store: LeaseStore,
    private readonly options: LeaseOptions,
    private readonly logger: Logger,
    private readonly onOwnerSeen: (owner: string, mine: boolean) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.owner = `${this.host}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  /** Resolves once we hold the lease. With whenHeld=exit, throws LeaseHeldError instead of waiting. */
  async acquire(cancelled: () => boolean): Promise<void> {
    for (;;) {
      const sentAt = this.clock();
      const result = await this.store.acquireLease(
        { owner: this.owner, host: this.host, pid: process.pid },
        this.options.ttlMs,
      );
      if (result.acquired) {
        this.deadline = sentAt + this.options.ttlMs;
        this.onOwnerSeen(this.owner, true);
        this.logger.info({ checkpointId: this.store.checkpointId, owner: this.owner }, 'lease acquired');
        return;
      }
      this.reportHolder(result.holder);
      if (this.options.whenHeld === 'exit') throw new LeaseHeldError(this.store.checkpointId, result.holder);
      if (cancelled()) throw new Error('stopped while waiting for the lease');
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.options.renewMs, 1000)));
      if (cancelled()) throw new Error('stopped while waiting for the lease');
    }
  }

  /** Renew every RELAY_LEASE_RENEW_MS, one renewal at a time, until release() or the lease is lost. */
  startRenewing(onLost: (error: LeaseLostError) => void): void {
    this.renewing = true;
    const loop = async (): Promise<void> => {
      while (this.renewing && !this.lost) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.renewMs);
          this.wakeRenewer = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRenewer = null;
        if (!this.renewing || this.lost) return;
        this.renewal = this.renewOnce(onLost);
        await this.renewal;
        this.renewal = null;
      }
    };
    void loop();
  }

  /** Publishing is allowed only while the lease is held and its deadline, on the monotonic clock, is ahead. */
  mayPublish(): boolean {
    return !this.lost && this.clock() < this.deadline;
  }

  /**
   * Stop renewing, wait for a renewal in flight, then give the lease up (unless it is lost). The caller
   * must not have checkpoint writes in flight either (they are fenced by this lease).
   */
  async release(): Promise<void> {
    this.renewing = false;
    this.wakeRenewer?.();
    await this.renewal;
    if (this.lost) return;
    this.lost = true; // from here on, nothing may be published under this lease
    await this.store
      .releaseLease(this.owner)
      .catch((error: unknown) =>
        this.logger.warn({ err: error }, 'could not release the lease; it expires by itself'),
      );
  }

  private async renewOnce(onLost: (error: LeaseLostError) => void): Promise<void> {
    const sentAt = this.clock();
    try {
      await this.store.renewLease(this.owner, this.options.ttlMs);
      this.deadline = sentAt + this.options.ttlMs;
    } catch (error) {
      if (error instanceof LeaseLostError) return this.markLost(error, onLost);
      this.logger.warn({ err: error }, 'lease renewal failed; retrying');
      if (this.clock() >= this.deadline) {
        this.markLost(new LeaseLostError(this.store.checkpointId, null), onLost);
      }
    }
  }

  private markLost(error: LeaseLostError, onLost: (error: LeaseLostError) => void): void {
    if (this.lost) return;
    this.lost = true;
    this.renewing = false;
    onLost(error);
  }

  private reportHolder(holder: LeaseInfo): void {
    this.onOwnerSeen(holder.owner, false);
    if (this.waitingFor === holder.owner) return;
    this.waitingFor = holder.owner;
    this.logger.warn(
      {
        checkpointId: this.store.checkpointId,
        leaseOwner: holder.owner,
        leaseHost: holder.host,
        leaseExpiresAt: holder.expiresAt,
        whenHeld: this.options.whenHeld,
      },
      this.options.whenHeld === 'wait'
        ? 'another relay holds the lease of this checkpoint; waiting for it to stop or expire'
        : 'another relay holds the lease of this checkpoint; exiting (RELAY_LEASE_WHEN_HELD=exit)',
    );
  }
}
