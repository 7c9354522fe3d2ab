import { expect } from 'chai';
import pino from 'pino';
import { LeaseKeeper, type LeaseStore } from '../../../../src/checkpoint/leaseKeeper.js';
import { LeaseLostError, type LeaseInfo } from '../../../../src/checkpoint/checkpointStore.js';

/** The store's lease operations, in memory: the lease is one owner or none; renewals can be slowed. */
class MemoryLeaseStore {
  readonly checkpointId = 'c';
  owner: string | null = null;
  renewDelayMs = 0;
  renewals = 0;
  async acquireLease(owner: Pick<LeaseInfo, 'owner'>): Promise<{ acquired: true }> {
    this.owner = owner.owner;
    return { acquired: true };
  }
  /** Resolves with the new expiry, as versions before 0.2 expected (this version ignores it). */
  async renewLease(owner: string, ttlMs: number): Promise<Date> {
    this.renewals += 1;
    if (this.renewDelayMs) await new Promise((r) => setTimeout(r, this.renewDelayMs));
    // Applied at the end: a release that reached the server first makes this renewal miss.
    if (this.owner !== owner) throw new LeaseLostError(this.checkpointId, null);
    return new Date(Date.now() + ttlMs);
  }
  async releaseLease(owner: string): Promise<void> {
    if (this.owner === owner) this.owner = null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function keeper(store: MemoryLeaseStore, ttlMs: number, renewMs: number): LeaseKeeper {
  return new LeaseKeeper(
    store as unknown as LeaseStore,
    { ttlMs, renewMs, whenHeld: 'wait' },
    pino({ level: 'silent' }),
    () => {},
  );
}

describe('lease keeper', () => {
  it('stops allowing publication when the lease runs out, even if the wall clock is set back', async () => {
    const store = new MemoryLeaseStore();
    const lease = keeper(store, 150, 10_000);
    await lease.acquire(() => false);
    expect(lease.mayPublish()).to.equal(true);
    const realNow = Date.now;
    Date.now = () => realNow() - 3_600_000; // an NTP step (or an operator) sets the clock back an hour
    try {
      await sleep(250);
      expect(lease.mayPublish(), 'publishing past the lease lifetime').to.equal(false);
    } finally {
      Date.now = realNow;
    }
  });

  it('keeps allowing publication when the wall clock jumps ahead, as long as the lease is renewed', async () => {
    const store = new MemoryLeaseStore();
    const lease = keeper(store, 400, 50);
    await lease.acquire(() => false);
    lease.startRenewing(() => {});
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000;
    try {
      await sleep(200);
      expect(lease.mayPublish()).to.equal(true);
    } finally {
      Date.now = realNow;
      await lease.release();
    }
  });

  it('release waits for a renewal in flight: its own release never makes the relay report the lease lost', async () => {
    const store = new MemoryLeaseStore();
    const lease = keeper(store, 5000, 20);
    await lease.acquire(() => false);
    store.renewDelayMs = 150;
    const lost: LeaseLostError[] = [];
    lease.startRenewing((e) => lost.push(e));
    while (store.renewals === 0) await sleep(5); // a renewal is now in flight
    await lease.release();
    await sleep(300);
    expect(lost, 'lease reported lost after our own release').to.deep.equal([]);
    expect(store.owner).to.equal(null);
    expect(lease.mayPublish(), 'nothing is published after release').to.equal(false);
  });

  it('reports the lease lost once renewals keep failing past its lifetime', async () => {
    const store = new MemoryLeaseStore();
    const lease = keeper(store, 120, 30);
    await lease.acquire(() => false);
    store.renewLease = async () => {
      throw new Error('store unreachable');
    };
    const lost: LeaseLostError[] = [];
    lease.startRenewing((e) => lost.push(e));
    await sleep(300);
    expect(lost).to.have.length(1);
    expect(lease.mayPublish()).to.equal(false);
    await lease.release();
  });
});
