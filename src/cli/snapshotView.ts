/**
 * A checkpoint's snapshot state for a person or a script (`token show`, `snapshot --cancel`): where
 * the current or last copy stands, and the request waiting for the next start. Pure: it only reads
 * what the checkpoint document holds.
 */
import {
  estimatedRemaining,
  type SnapshotReason,
  type SnapshotRequest,
  type StoredSnapshot,
} from '../snapshot/snapshotPlan.js';

export interface SnapshotView {
  id: string;
  state: 'running' | 'done';
  reason: SnapshotReason;
  collectionsDone: number;
  collectionsTotal: number;
  /** `db.coll` being copied; null when no collection is in progress (done, or copy finished). */
  current: string | null;
  /** Documents copied and acknowledged by Kafka (the checkpointed cursor). */
  copied: number;
  /** From the counts estimated when the plan was made: a guide, not a promise. */
  estimatedRemaining: number;
  startedAt: string | null;
  completedAt: string | null;
}

export interface SnapshotRequestView {
  /** As requested; empty: every watched collection (RELAY_WATCH at the start that performs it). */
  targets: string[];
  requestedAt: string | null;
  requestedBy: string;
}

export function describeSnapshot(stored: StoredSnapshot | null | undefined): SnapshotView | null {
  if (!stored) return null;
  const total = stored.collections.length;
  // A cursor marked done (or a snapshot marked done) has copied every collection; otherwise the
  // cursor's index is the collection in progress, all before it are complete.
  const finished = stored.state === 'done' || stored.cursor.done === true;
  const index = Math.min(stored.cursor.index, total);
  const current = finished ? undefined : stored.collections[index];
  return {
    id: stored.id,
    state: stored.state,
    reason: stored.reason,
    collectionsDone: finished ? total : index,
    collectionsTotal: total,
    current: current ? `${current.db}.${current.coll}` : null,
    copied: stored.cursor.copied,
    estimatedRemaining: finished ? 0 : estimatedRemaining(stored, stored.cursor),
    startedAt: iso(stored.startedAt),
    completedAt: iso(stored.completedAt),
  };
}

export function describeSnapshotRequest(
  request: SnapshotRequest | null | undefined,
): SnapshotRequestView | null {
  if (!request) return null;
  return {
    targets: [...request.targets],
    requestedAt: iso(request.requestedAt),
    requestedBy: request.requestedBy,
  };
}

export function requestTargetsText(targets: readonly string[]): string {
  return targets.length > 0 ? targets.join(', ') : 'every watched collection';
}

/** `token show` lines (same 13-character label column as the lines before them). */
export function snapshotLines(snapshot: SnapshotView | null, request: SnapshotRequestView | null): string[] {
  const lines: string[] = [];
  if (snapshot) {
    const times =
      `started at ${snapshot.startedAt ?? 'unknown'}` +
      (snapshot.completedAt ? `, completed at ${snapshot.completedAt}` : '');
    lines.push(`snapshot     ${snapshot.state}: id ${snapshot.id}, reason ${snapshot.reason}, ${times}`);
    lines.push(
      `             collections ${snapshot.collectionsDone} of ${snapshot.collectionsTotal} done` +
        (snapshot.current ? `, copying ${snapshot.current}` : ''),
    );
    lines.push(
      `             copied ${snapshot.copied} documents` +
        (snapshot.state === 'running' ? `, about ${snapshot.estimatedRemaining} remaining (estimated)` : ''),
    );
  }
  if (request) lines.push(`requested    ${requestText(request)}; performed at the relay's next start`);
  return lines;
}

/** "snapshot of db.coll, requested at … by …" — also what `snapshot --cancel` reports it removed. */
export function requestText(request: SnapshotRequestView): string {
  return (
    `snapshot of ${requestTargetsText(request.targets)}, requested at ${request.requestedAt ?? 'unknown'} ` +
    `by ${request.requestedBy}`
  );
}

function iso(value: Date | undefined): string | null {
  // Hand-edited documents may hold anything; show what is a date, and nothing for the rest.
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value.toISOString() : null;
}
