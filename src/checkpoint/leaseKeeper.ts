/**
 * Holding the stream's lease: acquire (waiting for a live holder, or refusing), renew every few seconds,
 * and fence ourselves — once the lease is lost, or has expired because it could not be renewed in time,
 * mayPublish() turns false at once and the owner is told to stop.
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

export class LeaseKeeper {
  readonly owner: string;
  readonly host = hostname();
  private expiresAt = 0;
  private renewer: NodeJS.Timeout | null = null;
  private lost = false;
  private waitingFor: string | null = null;

  constructor(
    private readonly store: CheckpointStore,
    private readonly options: LeaseOptions,
    private readonly logger: Logger,
    private readonly onOwnerSeen: (owner: string, mine: boolean) => void,
  ) {
    this.owner = `${this.host}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  /** Resolves once we hold the lease. With whenHeld=exit, throws LeaseHeldError instead of waiting. */
  async acquire(cancelled: () => boolean): Promise<void> {
    for (;;) {
      const result = await this.store.acquireLease(
        { owner: this.owner, host: this.host, pid: process.pid },
        this.options.ttlMs,
      );
      if (result.acquired) {
        this.expiresAt = Date.now() + this.options.ttlMs;
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

  startRenewing(onLost: (error: LeaseLostError) => void): void {
    const renew = async (): Promise<void> => {
      try {
        this.expiresAt = (await this.store.renewLease(this.owner, this.options.ttlMs)).getTime();
      } catch (error) {
        if (error instanceof LeaseLostError) return this.markLost(error, onLost);
        this.logger.warn({ err: error }, 'lease renewal failed; retrying');
        if (Date.now() >= this.expiresAt) {
          this.markLost(new LeaseLostError(this.store.checkpointId, null), onLost);
        }
      }
    };
    this.renewer = setInterval(() => void renew(), this.options.renewMs);
  }

  /** Publishing is allowed only while the lease is held and, by our own clock, not yet expired. */
  mayPublish(): boolean {
    return !this.lost && Date.now() < this.expiresAt;
  }

  async release(): Promise<void> {
    if (this.renewer) clearInterval(this.renewer);
    this.renewer = null;
    if (!this.lost) await this.store.releaseLease(this.owner).catch(() => undefined);
  }

  private markLost(error: LeaseLostError, onLost: (error: LeaseLostError) => void): void {
    if (this.lost) return;
    this.lost = true;
    if (this.renewer) clearInterval(this.renewer);
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
