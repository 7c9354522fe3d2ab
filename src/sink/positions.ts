/**
 * RELAY_DELIVERY=exactly-once: the position record, written to KAFKA_POSITIONS_TOPIC (compacted, keyed
 * by checkpoint id) in the same Kafka transaction as the events it covers. Whatever a read_committed
 * reader finds there is exactly what was published: every event up to the position is committed, none
 * after it (the records of one transaction are taken from the sink's queue in stream order, and the
 * position written is the one of the last of them).
 *
 * PositionTracker is the pure part: it follows the positions of the records taken into the open
 * transaction, and of idle stream positions (ticks, filtered changes) offered while nothing is
 * uncommitted, and says what the next transaction's position record holds; on abort it falls back to
 * what was committed.
 */
import { Timestamp } from 'mongodb';
import type { Position } from '../pipeline/ackWindow.js';
import type { SnapshotCursor } from '../snapshot/snapshotPlan.js';
import type { ResumeToken } from '../source/resumeToken.js';

export const POSITION_RECORD_VERSION = 1;

/** The snapshot part of a committed position: the plan it belongs to and how far it got. */
export interface CommittedSnapshot {
  planId: string;
  cursor: SnapshotCursor | null;
  /** A stream position was committed after this snapshot's items: the snapshot is complete. */
  streamStarted: boolean;
}

export interface CommittedPosition {
  /** The stream's resume token; null while the stream has no token yet (started at a cluster time). */
  token: ResumeToken | null;
  clusterTime: Timestamp | null;
  snapshot: CommittedSnapshot | null;
  /** Names the transaction that wrote it: read back after a commit whose answer was lost. */
  transaction: { owner: string; seq: number };
}

/** The record's value, as JSON text (readable with any Kafka tool). */
export function encodePosition(checkpointId: string, p: CommittedPosition, committedAt: Date): string {
  return JSON.stringify({
    v: POSITION_RECORD_VERSION,
    checkpointId,
    token: p.token?._data ?? null,
    clusterTime: p.clusterTime ? { t: p.clusterTime.high, i: p.clusterTime.low } : null,
    snapshot: p.snapshot,
    transaction: p.transaction,
    committedAt: committedAt.toISOString(),
  });
}

/** Thrown for a position record this version cannot read: it names the topic's record. */
export class PositionRecordError extends Error {
  constructor(detail: string) {
    super(`unreadable position record: ${detail}`);
    this.name = 'PositionRecordError';
  }
}

interface PositionJson {
  v?: unknown;
  token?: unknown;
  clusterTime?: { t?: unknown; i?: unknown } | null;
  snapshot?: CommittedSnapshot | null;
  transaction?: { owner?: unknown; seq?: unknown };
}

export function decodePosition(text: string): CommittedPosition {
  let json: PositionJson;
  try {
    json = JSON.parse(text) as PositionJson;
  } catch (error) {
    throw new PositionRecordError(`not JSON (${(error as Error).message})`);
  }
  if (json.v !== POSITION_RECORD_VERSION)
    throw new PositionRecordError(`version ${String(json.v)}, this relay reads ${POSITION_RECORD_VERSION}`);
  const token = json.token;
  if (token !== null && typeof token !== 'string') throw new PositionRecordError('token is not a string');
  const ct = json.clusterTime;
  if (ct && (typeof ct.t !== 'number' || typeof ct.i !== 'number'))
    throw new PositionRecordError('clusterTime is not {t, i}');
  const txn = json.transaction;
  if (!txn || typeof txn.owner !== 'string' || typeof txn.seq !== 'number')
    throw new PositionRecordError('transaction is not {owner, seq}');
  return {
    token: token === null ? null : { _data: token },
    clusterTime: ct ? new Timestamp({ t: ct.t as number, i: ct.i as number }) : null,
    snapshot: json.snapshot ?? null,
    transaction: { owner: txn.owner, seq: txn.seq },
  };
}

type Stream = Pick<CommittedPosition, 'token' | 'clusterTime'>;

export class PositionTracker {
  private committed: { stream: Stream; snapshot: CommittedSnapshot | null };
  private open: { stream: Stream; snapshot: CommittedSnapshot | null };
  private snapshotPlanId: string | null = null;
  private offered = false;

  constructor(start: Stream, snapshot: CommittedSnapshot | null = null) {
    this.committed = { stream: start, snapshot };
    this.open = { ...this.committed };
    this.snapshotPlanId = snapshot?.planId ?? null;
  }

  /** A snapshot begins (or continues) under this plan: its items' cursors belong to it. */
  beginSnapshot(planId: string | null): void {
    this.snapshotPlanId = planId;
  }

  /** A record taken into the open transaction, in stream order. */
  take(position: Position): void {
    if (position.snapshot) {
      if (this.snapshotPlanId === null) throw new Error('bug: a snapshot item without a snapshot plan');
      this.open.snapshot = { planId: this.snapshotPlanId, cursor: position.snapshot, streamStarted: false };
      return;
    }
    this.open.stream = { token: position.token, clusterTime: position.clusterTime };
    if (this.open.snapshot && !this.open.snapshot.streamStarted)
      this.open.snapshot = { ...this.open.snapshot, streamStarted: true };
  }

  /**
   * A stream position with nothing uncommitted before it (a tick or filtered change released while
   * the sink held nothing): worth a position-only transaction now and then, so a quiet stream's
   * committed token stays inside the oplog window.
   */
  offer(position: Position): void {
    if (position.snapshot) return;
    this.take(position);
    this.offered = true;
  }

  /** Whether the open state differs from the committed one because of an offered position. */
  get hasOffer(): boolean {
    return this.offered;
  }

  /** The position record of the transaction about to commit. */
  next(owner: string, seq: number): CommittedPosition {
    return { ...this.open.stream, snapshot: this.open.snapshot, transaction: { owner, seq } };
  }

  /** The transaction committed: its position is the new base. */
  commit(): void {
    this.committed = { ...this.open };
    this.offered = false;
  }

  /** The transaction was aborted: its records go out again, in a later transaction. */
  abort(): void {
    this.open = { ...this.committed };
    this.offered = false;
  }
}
