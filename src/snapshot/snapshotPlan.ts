/**
 * What a snapshot copies and where it stands — the part of the checkpoint document that makes a
 * snapshot resumable — and the decision whether this run copies at all.
 *
 * Invariants:
 *  - A plan is fixed when the snapshot starts: its collections (in a fixed order), its start
 *    position's cluster time and its ID never change, so a re-copy after a crash produces the same
 *    change IDs (and the consumer helper drops them as duplicates).
 *  - The cursor `{index, lastIdJson}` means "every document of collections[0..index) and of
 *    collections[index] up to lastIdJson (in _id order) is acknowledged by Kafka": it is written only
 *    by the checkpointer, from positions the ack window released.
 */
import type { MongoClient, Timestamp } from 'mongodb';
import type { WatchTarget } from '../config/watchTargets.js';

export type SnapshotMode = 'never' | 'initial' | 'when-needed';
export type SnapshotReason = 'initial' | 'requested' | 'history-lost';

export interface SnapshotCollection {
  db: string;
  coll: string;
  /** estimatedDocumentCount when the plan was made (for the "remaining" estimate only). */
  estimated: number;
}

/** Progress: see the module header. `copied` counts the documents handed out up to this cursor. */
export interface SnapshotCursor {
  index: number;
  /** The last `_id` copied in collections[index], as canonical Extended JSON; absent: none yet. */
  lastIdJson?: string;
  /**
   * The `_id` type class that was being scanned when lastIdJson was handed out (idOrder.ts
   * `className`): the decoded `_id` cannot always tell it (a Symbol comes back as a string).
   * Absent in cursors written before 2026-12-06: derived from the `_id` then.
   */
  lastIdClass?: string;
  copied: number;
  /** Set on the cursor after the last document: the copy is complete. */
  done?: boolean;
}

export interface SnapshotPlan {
  /** `<seconds>.<increment>-<n>`: the start's cluster time and the checkpoint's snapshot number. */
  id: string;
  number: number;
  reason: SnapshotReason;
  /** Cluster time of the stream position the snapshot starts at; every snapshot record carries it. */
  clusterTime: Timestamp;
  collections: SnapshotCollection[];
  cursor: SnapshotCursor;
}

/** As stored in the checkpoint document (`snapshot` field). */
export interface StoredSnapshot extends SnapshotPlan {
  state: 'running' | 'done';
  startedAt: Date;
  completedAt?: Date;
  /** The `_id` of the cursor as a BSON value, for people reading the document (lastIdJson is authoritative). */
  lastId?: unknown;
}

/** An operator's request (`mongo-kafka-relay snapshot`), performed at the relay's next start. */
export interface SnapshotRequest {
  targets: string[];
  requestedAt: Date;
  requestedBy: string;
}

export type SnapshotDecision =
  | { kind: 'none' }
  | { kind: 'resume'; plan: SnapshotPlan }
  | { kind: 'new'; reason: SnapshotReason; targets: readonly WatchTarget[] };

/**
 * A running snapshot always continues (whatever RELAY_SNAPSHOT says now); then an operator's request;
 * then RELAY_SNAPSHOT=initial|when-needed when the checkpoint has no position yet.
 */
export function decideSnapshot(
  checkpoint: {
    token?: unknown;
    startAt?: unknown;
    snapshot?: StoredSnapshot | null;
    snapshotRequest?: SnapshotRequest | null;
  } | null,
  mode: SnapshotMode,
  configured: readonly WatchTarget[],
  requestedTargets: (names: string[]) => WatchTarget[],
): SnapshotDecision {
  const running = checkpoint?.snapshot;
  if (running && running.state === 'running') return { kind: 'resume', plan: running };
  if (checkpoint?.snapshotRequest)
    return {
      kind: 'new',
      reason: 'requested',
      targets: requestedTargets(checkpoint.snapshotRequest.targets),
    };
  const positioned = Boolean(checkpoint?.token || checkpoint?.startAt);
  if (mode !== 'never' && !positioned) return { kind: 'new', reason: 'initial', targets: configured };
  return { kind: 'none' };
}

export interface OwnCollections {
  checkpointDb: string;
  checkpointColl: string;
}

const SYSTEM_DBS = new Set(['admin', 'config', 'local']);

/**
 * The collections the targets cover now: `db.coll` targets as named (even if empty or missing: the
 * copy then finds nothing), the existing collections of `db.*` and `*` — never views, system
 * collections, the relay's checkpoint collection, nor (under `*`) the relay's own database. Sorted,
 * so the order is reproducible.
 */
export async function collectionsToCopy(
  client: MongoClient,
  targets: readonly WatchTarget[],
  own: OwnCollections,
): Promise<SnapshotCollection[]> {
  const names = new Map<string, { db: string; coll: string }>();
  const add = (db: string, coll: string): void => {
    if (db === own.checkpointDb && coll === own.checkpointColl) return;
    names.set(`${db}.${coll}`, { db, coll });
  };
  const listDb = async (db: string): Promise<void> => {
    const infos = await client
      .db(db)
      .listCollections({}, { nameOnly: false, authorizedCollections: true })
      .toArray();
    for (const info of infos) {
      if (info.type === 'view' || info.name.startsWith('system.')) continue;
      add(db, info.name);
    }
  };
  for (const t of targets) {
    if (t.kind === 'collection') add(t.db, t.coll);
    else if (t.kind === 'database') await listDb(t.db);
    else {
      const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
      for (const { name } of databases) {
        if (SYSTEM_DBS.has(name) || name === own.checkpointDb) continue;
        await listDb(name);
      }
    }
  }
  const sorted = [...names.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  const out: SnapshotCollection[] = [];
  for (const { db, coll } of sorted) {
    const estimated = await client
      .db(db)
      .collection(coll)
      .estimatedDocumentCount()
      .catch(() => 0);
    out.push({ db, coll, estimated });
  }
  return out;
}

export function newPlan(
  reason: SnapshotReason,
  clusterTime: Timestamp,
  previousNumber: number,
  collections: SnapshotCollection[],
): SnapshotPlan {
  const number = previousNumber + 1;
  return {
    id: `${clusterTime.high}.${clusterTime.low}-${number}`,
    number,
    reason,
    clusterTime,
    collections,
    cursor: { index: 0, copied: 0 },
  };
}

/** Estimated documents still to copy from a cursor (collections not started count in full). */
export function estimatedRemaining(plan: Pick<SnapshotPlan, 'collections'>, cursor: SnapshotCursor): number {
  if (cursor.done) return 0;
  let remaining = 0;
  let copiedBefore = 0;
  for (let i = 0; i < plan.collections.length; i++) {
    const estimated = plan.collections[i]!.estimated;
    if (i < cursor.index) copiedBefore += estimated;
    else remaining += estimated;
  }
  // The current collection is partly copied: what was copied beyond the finished collections.
  return Math.max(0, remaining - Math.max(0, cursor.copied - copiedBefore));
}
