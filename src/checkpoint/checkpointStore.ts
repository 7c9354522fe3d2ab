/**
 * The checkpoint store: one document per checkpoint ID holding the stream's position AND its lease.
 * Keeping both in one document is what makes fencing atomic: a checkpoint write is a conditional
 * update that matches only while the writer still owns the lease, so a relay that lost its lease can
 * never move the position (no transaction needed, works on any MongoDB).
 *
 * Invariants:
 *  - Time is the server's. A lease records when the server last renewed it (`$currentDate`) and its
 *    lifetime; whether it has expired is decided on the server (`$$NOW` in `$expr`). No relay's wall
 *    clock is ever compared with another's (the local "may I publish" deadline is LeaseKeeper's, on a
 *    monotonic clock).
 *  - Every operation is durable and bounded: writes wait for a majority (`w: "majority"` with
 *    `wtimeout`), reads are majority reads, and each operation has a server-side `maxTimeMS` and a
 *    client-side deadline, so a hung store fails the operation instead of stalling its caller. (The
 *    driver's `timeoutMS` is a no-op in mongodb 7.x, hence our own deadline.)
 *  - A position is a whole change: a resume token, or — before the first token, when the stream was
 *    started at a cluster time — `startAt` (resume AT that time, inclusive).
 */
import type { Collection, Document, Filter, MongoClient, Timestamp, UpdateFilter } from 'mongodb';
import { MongoServerError } from 'mongodb';
import type { ResumeToken } from '../source/resumeToken.js';
import { LEGACY_ID_RANGE, isLegacyCheckpointId } from './legacyCheckpointId.js';
import type { SnapshotCursor, SnapshotRequest, StoredSnapshot } from '../snapshot/snapshotPlan.js';
import { snapshotProgressUpdate } from '../snapshot/snapshotStore.js';

export interface LeaseInfo {
  owner: string;
  host: string;
  pid: number;
  acquiredAt: Date;
  /** Server time of the last acquisition or renewal. */
  renewedAt: Date;
  /** Lease lifetime from renewedAt (absent on leases written by versions before 0.2). */
  ttlMs?: number;
  /** renewedAt + ttlMs, computed on read for display; stored only by versions before 0.2. */
  expiresAt: Date;
}

/** The identity of the watch configuration a checkpoint was written under. */
export interface CheckpointIdentity {
  fingerprint: string;
  watch: string[];
  selection?: { watch: string[]; pipeline: string; operationTypes: string[] };
}

export interface CheckpointDoc {
  _id: string;
  token: ResumeToken | null;
  /** Set instead of `token` while the position is a cluster time (start at it, inclusive). */
  startAt?: Timestamp | null;
  /** Cluster time of the newest change at or before the token. */
  clusterTime: Timestamp | null;
  counts: { published: number; filtered: number; deadLettered: number };
  writtenAt: Date;
  fingerprint: string | null;
  watch: string[] | null;
  selection?: CheckpointIdentity['selection'] | null;
  /** Who last moved the position by hand (CLI), if anyone. */
  setBy?: string;
  /** On a checkpoint adopted from an earlier version's derived ID: that ID. */
  adoptedFrom?: string;
  /** On an earlier version's derived-ID checkpoint that was adopted: the ID that holds it now. */
  migratedTo?: string;
  lease?: LeaseInfo | null;
  /** The current or last snapshot (src/snapshot/snapshotPlan.ts). */
  snapshot?: StoredSnapshot | null;
  /** A snapshot an operator asked for, performed at the next start. */
  snapshotRequest?: SnapshotRequest | null;
}

export interface CheckpointWrite {
  token: ResumeToken;
  clusterTime: Timestamp | null;
  /** The write carries snapshot progress only: token and clusterTime are not written. */
  snapshotOnly?: boolean;
  /** The snapshot's cursor (src/snapshot/), when it moved. */
  snapshot?: SnapshotCursor;
  /** The first stream position after a snapshot: the snapshot is complete. */
  snapshotDone?: boolean;
  /**
   * Totals since the checkpoint was created, as of this position: set, never added, so that a write
   * retried after its reply was lost (it may have applied) is a replay, not a second count.
   */
  published: number;
  filtered: number;
  deadLettered: number;
  fingerprint: string;
  watch: string[];
}

/** Where a stream starts, as the store persists it before anything is published. */
export type StoredPosition = { token: ResumeToken; clusterTime: Timestamp | null } | { startAt: Timestamp };

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
        `lease expires ${holder.expiresAt.toISOString()} (server time); stop that relay first, or pass --force if it is certainly dead`,
    );
    this.name = 'LeaseHeldError';
  }
}

/** The checkpoint store did not answer within RELAY_CHECKPOINT_TIMEOUT_MS. */
export class StoreTimeoutError extends Error {
  constructor(operation: string, ms: number) {
    super(`the checkpoint store did not answer ${operation} within ${ms} ms (RELAY_CHECKPOINT_TIMEOUT_MS)`);
    this.name = 'StoreTimeoutError';
  }
}

export type AcquireResult = { acquired: true } | { acquired: false; holder: LeaseInfo };

export interface StoreOptions {
  /** Bound of every operation (ms): maxTimeMS, wtimeout and the client-side deadline. */
  timeoutMs: number;
}

const DEFAULT_STORE_OPTIONS: StoreOptions = { timeoutMs: 10_000 };

/** The lease's expiry, on the server: renewedAt + ttlMs, or the stored expiresAt of an older version. */
const LEASE_EXPIRY = {
  $ifNull: [{ $add: ['$lease.renewedAt', '$lease.ttlMs'] }, '$lease.expiresAt'],
};
const LEASE_EXPIRED = { $expr: { $lt: [LEASE_EXPIRY, '$$NOW'] } };
const LEASE_LIVE = { $expr: { $gte: [LEASE_EXPIRY, '$$NOW'] } };
/** MongoDB's PathNotViable: `$set` of `lease.owner` where `lease` is null (a release by a version before 0.2). */
const PATH_NOT_VIABLE = 28;

export class CheckpointStore {
  readonly collection: Collection<CheckpointDoc>;
  private readonly options: StoreOptions;
  private consecutiveFailures = 0;

  constructor(
    client: MongoClient,
    database: string,
    collection: string,
    readonly checkpointId: string,
    options: Partial<StoreOptions> = {},
  ) {
    this.collection = client.db(database).collection<CheckpointDoc>(collection);
    this.options = { ...DEFAULT_STORE_OPTIONS, ...options };
  }

  /** False after an operation failed or timed out, until one succeeds again (for /readyz). */
  get healthy(): boolean {
    return this.consecutiveFailures === 0;
  }

  read(): Promise<CheckpointDoc | null> {
    return this.readOne(this.checkpointId);
  }

  /** Take the lease if it is free, expired (by the server's clock), or already ours. */
  async acquireLease(
    owner: Pick<LeaseInfo, 'owner' | 'host' | 'pid'>,
    ttlMs: number,
  ): Promise<AcquireResult> {
    const take = (): Promise<unknown> =>
      this.updateOne(
        'acquireLease',
        {
          _id: this.checkpointId,
          $or: [{ lease: null }, { 'lease.owner': owner.owner }, LEASE_EXPIRED],
        },
        {
          $set: {
            'lease.owner': owner.owner,
            'lease.host': owner.host,
            'lease.pid': owner.pid,
            'lease.ttlMs': ttlMs,
          },
          $currentDate: { 'lease.acquiredAt': true, 'lease.renewedAt': true },
          $unset: { 'lease.expiresAt': '' },
        },
        true,
      );
    try {
      await take();
      return { acquired: true };
    } catch (error) {
      if (error instanceof MongoServerError && error.code === PATH_NOT_VIABLE) {
        await this.updateOne(
          'acquireLease',
          { _id: this.checkpointId, lease: { $type: 'null' } },
          { $unset: { lease: '' } },
        );
        return this.acquireLease(owner, ttlMs);
      }
      // The upsert found a document whose lease is live (no match, duplicate _id): "held", not a failure.
      if (!(error instanceof MongoServerError && error.code === 11000)) throw error;
    }
    const doc = await this.read();
    if (doc?.lease) return { acquired: false, holder: doc.lease };
    return this.acquireLease(owner, ttlMs);
  }

  /** Extend our lease from the server's now; throws LeaseLostError if someone else owns it now. */
  async renewLease(owner: string, ttlMs: number): Promise<void> {
    const result = await this.updateOne(
      'renewLease',
      { _id: this.checkpointId, 'lease.owner': owner },
      { $set: { 'lease.ttlMs': ttlMs }, $currentDate: { 'lease.renewedAt': true } },
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
  }

  async releaseLease(owner: string): Promise<void> {
    await this.updateOne(
      'releaseLease',
      { _id: this.checkpointId, 'lease.owner': owner },
      { $unset: { lease: '' } },
    );
  }

  /** The fenced checkpoint write. */
  async write(owner: string, w: CheckpointWrite): Promise<Date> {
    const writtenAt = new Date();
    const result = await this.updateOne(
      'write',
      { _id: this.checkpointId, 'lease.owner': owner },
      {
        $set: {
          ...(w.snapshotOnly ? {} : { token: w.token, startAt: null, clusterTime: w.clusterTime }),
          writtenAt,
          fingerprint: w.fingerprint,
          watch: w.watch,
          ...snapshotProgressUpdate(w.snapshot, w.snapshotDone === true, writtenAt),
          counts: { published: w.published, filtered: w.filtered, deadLettered: w.deadLettered },
        },
      },
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
    return writtenAt;
  }

  /**
   * The fenced write of where this run starts, with the identity of its watch configuration — made
   * before anything is published, so a crash right after a first start (or during a Kafka outage at
   * first start) resumes here instead of at a later "now".
   */
  async persistStart(
    owner: string,
    position: StoredPosition,
    identity: CheckpointIdentity,
    snapshot: StoredSnapshot | null = null,
  ): Promise<Date> {
    const writtenAt = new Date();
    const set: Document = {
      writtenAt,
      fingerprint: identity.fingerprint,
      watch: identity.watch,
      selection: identity.selection ?? null,
    };
    if ('token' in position)
      Object.assign(set, { token: position.token, startAt: null, clusterTime: position.clusterTime });
    else Object.assign(set, { token: null, startAt: position.startAt, clusterTime: position.startAt });
    // A new snapshot is stored with the start it belongs to, in one write: a crash in between must
    // not leave a positioned checkpoint whose snapshot was never recorded (it would never be copied).
    // The operator's mark (`token set`) is consumed: from here on the relay moves the position.
    const update: UpdateFilter<CheckpointDoc> = {
      $set: set,
      $inc: { 'counts.published': 0, 'counts.filtered': 0, 'counts.deadLettered': 0 },
      $unset: { setBy: '' },
    };
    if (snapshot) {
      set.snapshot = snapshot;
      update.$unset = { setBy: '', snapshotRequest: '' };
    }
    const result = await this.updateOne(
      'persistStart',
      { _id: this.checkpointId, 'lease.owner': owner },
      update,
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
    return writtenAt;
  }

  /**
   * Checkpoints an earlier version kept under IDs derived from the watch configuration, not yet adopted,
   * each with whether a live relay (of that version) holds it.
   */
  async legacyCheckpoints(): Promise<{ doc: CheckpointDoc; leaseLive: boolean }[]> {
    const inRange: Filter<CheckpointDoc> = {
      _id: { $gte: LEGACY_ID_RANGE.from, $lt: LEGACY_ID_RANGE.to },
      migratedTo: { $exists: false },
    };
    const [docs, live] = await Promise.all([
      this.find('legacyCheckpoints', inRange),
      this.find('legacyCheckpoints', { ...inRange, ...LEASE_LIVE }),
    ]);
    const liveIds = new Set(live.map((d) => d._id));
    return docs
      .filter((d) => isLegacyCheckpointId(d._id) && (d.token || d.startAt))
      .map((doc) => ({ doc: withLeaseExpiry(doc), leaseLive: liveIds.has(doc._id) }));
  }

  /**
   * Copy an earlier version's derived-ID checkpoint into ours (fenced: we hold our lease), then mark
   * it adopted so it is never adopted twice. The copy comes first: a crash in between leaves both,
   * and the next start finds ours.
   */
  async adopt(owner: string, legacy: CheckpointDoc): Promise<void> {
    const result = await this.updateOne(
      'adopt',
      { _id: this.checkpointId, 'lease.owner': owner },
      {
        $set: {
          token: legacy.token,
          startAt: legacy.startAt ?? null,
          clusterTime: legacy.clusterTime,
          counts: legacy.counts ?? { published: 0, filtered: 0, deadLettered: 0 },
          fingerprint: legacy.fingerprint,
          watch: legacy.watch,
          selection: legacy.selection ?? null,
          writtenAt: new Date(),
          adoptedFrom: legacy._id,
        },
      },
    );
    if (result.matchedCount === 0)
      throw new LeaseLostError(this.checkpointId, (await this.read())?.lease ?? null);
    await this.updateOne(
      'adopt',
      { _id: legacy._id, migratedTo: { $exists: false } },
      { $set: { migratedTo: this.checkpointId }, $currentDate: { migratedAt: true } },
    );
  }

  /** Refuses while another process holds a live lease (by the server's clock), unless forced. */
  async assertNotLeased(force: boolean): Promise<void> {
    if (force) return;
    const [held] = await this.find('assertNotLeased', { _id: this.checkpointId, ...LEASE_LIVE });
    if (held?.lease) throw new LeaseHeldError(this.checkpointId, withLeaseExpiry(held).lease!);
  }

  /** Operator action (CLI): move the position. Counts and fingerprint are kept. */
  async setToken(
    token: ResumeToken,
    clusterTime: Timestamp | null,
    setBy: string,
    force: boolean,
  ): Promise<void> {
    await this.assertNotLeased(force);
    await this.updateOne(
      'setToken',
      { _id: this.checkpointId },
      {
        $set: { token, startAt: null, clusterTime, writtenAt: new Date(), setBy },
        $setOnInsert: {
          counts: { published: 0, filtered: 0, deadLettered: 0 },
          fingerprint: null,
          watch: null,
        },
      },
      true,
    );
  }

  /** Operator action (CLI): ask for a snapshot of `targets` at the relay's next start (no lease needed). */
  async requestSnapshot(request: SnapshotRequest): Promise<void> {
    await this.updateOne(
      'requestSnapshot',
      { _id: this.checkpointId },
      {
        $set: { snapshotRequest: request },
        $setOnInsert: {
          token: null,
          clusterTime: null,
          counts: { published: 0, filtered: 0, deadLettered: 0 },
          fingerprint: null,
          watch: null,
        },
      },
      true,
    );
  }

  /**
   * Operator action (CLI): withdraw a pending snapshot request (no lease needed, like the request).
   * Returns the request removed, or null when none was pending. One atomic find-and-modify, so what
   * is reported is exactly what was removed, even if a relay start consumes a request meanwhile.
   * A snapshot already running (`snapshot.state`) is not touched: it is resumable and continues.
   */
  async cancelSnapshotRequest(): Promise<SnapshotRequest | null> {
    const before = await this.bounded('cancelSnapshotRequest', (o) =>
      this.collection.findOneAndUpdate(
        { _id: this.checkpointId, snapshotRequest: { $ne: null } },
        { $unset: { snapshotRequest: '' } },
        { ...o.write, returnDocument: 'before', projection: { snapshotRequest: 1 } },
      ),
    );
    return before?.snapshotRequest ?? null;
  }

  /** Operator action (CLI): forget the position; the next start uses RELAY_START_AT. */
  async clear(force: boolean): Promise<boolean> {
    await this.assertNotLeased(force);
    const result = await this.bounded('clear', (o) =>
      this.collection.deleteOne({ _id: this.checkpointId }, { ...o.write }),
    );
    return result.deletedCount === 1;
  }

  private async readOne(id: string): Promise<CheckpointDoc | null> {
    const [doc] = await this.find('read', { _id: id });
    return doc ? withLeaseExpiry(doc) : null;
  }

  private find(operation: string, filter: Filter<CheckpointDoc>): Promise<CheckpointDoc[]> {
    return this.bounded(operation, (o) => this.collection.find(filter, o.read).toArray());
  }

  private updateOne(
    operation: string,
    filter: Filter<CheckpointDoc>,
    update: UpdateFilter<CheckpointDoc>,
    upsert = false,
  ): ReturnType<Collection<CheckpointDoc>['updateOne']> {
    return this.bounded(operation, (o) => this.collection.updateOne(filter, update, { ...o.write, upsert }));
  }

  /** Runs one store operation with durable options and a deadline; tracks health. */
  private async bounded<T>(
    operation: string,
    work: (o: { read: Document; write: Document }) => Promise<T>,
  ): Promise<T> {
    const ms = this.options.timeoutMs;
    const o = {
      read: { readConcern: { level: 'majority' }, readPreference: 'primary', maxTimeMS: ms },
      write: { writeConcern: { w: 'majority', wtimeoutMS: ms }, maxTimeMS: ms },
    };
    let timer: NodeJS.Timeout | undefined;
    // Grace beyond the server-side limits, so the server's own (more precise) error usually wins.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreTimeoutError(operation, ms)), ms + 250);
    });
    try {
      const result = await Promise.race([work(o), deadline]);
      this.consecutiveFailures = 0;
      return result;
    } catch (error) {
      // A conflict (duplicate _id of a held lease) is an answer, not a failing store.
      if (!(error instanceof MongoServerError && error.code === 11000)) this.consecutiveFailures += 1;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Leases written by this version store renewedAt + ttlMs; show their expiry like older ones did. */
function withLeaseExpiry(doc: CheckpointDoc): CheckpointDoc {
  const lease = doc.lease;
  if (lease && typeof lease.ttlMs === 'number' && lease.renewedAt instanceof Date) {
    return { ...doc, lease: { ...lease, expiresAt: new Date(lease.renewedAt.getTime() + lease.ttlMs) } };
  }
  return doc;
}
