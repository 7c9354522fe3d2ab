/**
 * The checkpoint store: one document per checkpoint ID holding the stream's position AND its lease.
 * Keeping both in one document is what makes fencing atomic: a checkpoint write is a conditional
 * update that matches only while the writer still owns the lease, so a relay that lost its lease can
 * never move the position (no transaction needed, works on any MongoDB).
 */
import type { Collection, MongoClient, Timestamp } from 'mongodb';
import { MongoServerError } from 'mongodb';
import type { ResumeToken } from '../source/resumeToken.js';

export interface LeaseInfo {
  owner: string;
  host: string;
  pid: number;
  acquiredAt: Date;
  renewedAt: Date;
  expiresAt: Date;
}

export interface CheckpointDoc {
  _id: string;
  token: ResumeToken | null;
  /** Cluster time of the newest change at or before the token. */
  clusterTime: Timestamp | null;
  counts: { published: number; filtered: number; deadLettered: number };
  writtenAt: Date;
  fingerprint: string | null;
  watch: string[] | null;
  /** Who last moved the position by hand (CLI), if anyone. */
  setBy?: string;
  lease?: LeaseInfo | null;
}

export interface CheckpointWrite {
  token: ResumeToken;
  clusterTime: Timestamp | null;
  published: number;
  filtered: number;
  deadLettered: number;
  fingerprint: string;
  watch: string[];
}

export class LeaseLostError extends Error {
  constructor(
    readonly checkpointId: string,
    readonly holder: LeaseInfo | null,
  ) {
    super(
      holder
        ? `lost the lease on checkpoint "${checkpointId}" to ${holder.owner} (host ${holder.host}); stopping so that only one relay publishes`
        : `lost the lease on checkpoint "${checkpointId}"; stopping so that only one relay publishes`,
    );
    this.name = 'LeaseLostError';
  }
}

export class LeaseHeldError extends Error {
  constructor(
    readonly checkpointId: string,
    readonly holder: LeaseInfo,
  ) {
    super(
      `checkpoint "${checkpointId}" is leased by another relay: ${holder.owner} on host ${holder.host}, ` +
        `lease expires ${holder.expiresAt.toISOString()}; stop that relay first, or pass --force if it is certainly dead`,
    );
    this.name = 'LeaseHeldError';
  }
}

export type AcquireResult = { acquired: true } | { acquired: false; holder: LeaseInfo };

export class CheckpointStore {
  readonly collection: Collection<CheckpointDoc>;

  constructor(
    client: MongoClient,
    database: string,
    collection: string,
    readonly checkpointId: string,
  ) {
    this.collection = client.db(database).collection<CheckpointDoc>(collection);
  }

  read(): Promise<CheckpointDoc | null> {
    return this.collection.findOne({ _id: this.checkpointId });
  }

  /** Take the lease if it is free, expired, or already ours. */
  async acquireLease(
    owner: Omit<LeaseInfo, 'acquiredAt' | 'renewedAt' | 'expiresAt'>,
    ttlMs: number,
  ): Promise<AcquireResult> {
    const now = new Date();
    const lease: LeaseInfo = {
      ...owner,
      acquiredAt: now,
      renewedAt: now,
      expiresAt: new Date(now.getTime() + ttlMs),
    };
    try {
      const result = await this.collection.updateOne(
        {
          _id: this.checkpointId,
          $or: [
            { lease: null },
            { lease: { $exists: false } },
            { 'lease.expiresAt': { $lt: now } },
            { 'lease.owner': owner.owner },
          ],
        },
        { $set: { lease } },
        { upsert: true },
      );
      if (result.matchedCount + result.upsertedCount === 1) return { acquired: true };
    } catch (error) {
      // The upsert raced with (or found) a document whose lease is live: that is "held", not a failure.
      if (!(error instanceof MongoServerError && error.code === 11000)) throw error;
    }
    const doc = await this.read();
    if (doc?.lease) return { acquired: false, holder: doc.lease };
    return this.acquireLease(owner, ttlMs);
  }

  /** Extend our lease; throws LeaseLostError if someone else owns it now. */
  async renewLease(owner: string, ttlMs: number): Promise<Date> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const result = await this.collection.updateOne(
      { _id: this.checkpointId, 'lease.owner': owner },
      { $set: { 'lease.renewedAt': now, 'lease.expiresAt': expiresAt } },
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
    return expiresAt;
  }

  async releaseLease(owner: string): Promise<void> {
    await this.collection.updateOne(
      { _id: this.checkpointId, 'lease.owner': owner },
      { $set: { lease: null } },
    );
  }

  /** The fenced checkpoint write. */
  async write(owner: string, w: CheckpointWrite): Promise<Date> {
    const writtenAt = new Date();
    const result = await this.collection.updateOne(
      { _id: this.checkpointId, 'lease.owner': owner },
      {
        $set: {
          token: w.token,
          clusterTime: w.clusterTime,
          writtenAt,
          fingerprint: w.fingerprint,
          watch: w.watch,
        },
        $inc: {
          'counts.published': w.published,
          'counts.filtered': w.filtered,
          'counts.deadLettered': w.deadLettered,
        },
      },
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
    return writtenAt;
  }

  /** Refuses while another process holds a live lease, unless forced. */
  async assertNotLeased(force: boolean): Promise<void> {
    const lease = (await this.read())?.lease;
    if (!force && lease && lease.expiresAt.getTime() > Date.now())
      throw new LeaseHeldError(this.checkpointId, lease);
  }

  /** Operator action (CLI): move the position. Counts and fingerprint are kept. */
  async setToken(
    token: ResumeToken,
    clusterTime: Timestamp | null,
    setBy: string,
    force: boolean,
  ): Promise<void> {
    await this.assertNotLeased(force);
    await this.collection.updateOne(
      { _id: this.checkpointId },
      {
        $set: { token, clusterTime, writtenAt: new Date(), setBy },
        $setOnInsert: {
          counts: { published: 0, filtered: 0, deadLettered: 0 },
          fingerprint: null,
          watch: null,
        },
      },
      { upsert: true },
    );
  }

  /** Operator action (CLI): forget the position; the next start uses RELAY_START_AT. */
  async clear(force: boolean): Promise<boolean> {
    await this.assertNotLeased(force);
    const result = await this.collection.deleteOne({ _id: this.checkpointId });
    return result.deletedCount === 1;
  }
}
