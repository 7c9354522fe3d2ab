/**
 * RELAY_DELIVERY=exactly-once: which position a start resumes from, when both the positions topic
 * (written in the events' own Kafka transactions) and the MongoDB checkpoint (the mirror, written
 * after each commit) hold one. Pure, so each rule is unit-tested:
 *  1. no committed position in Kafka (first start in this mode, or its record was deleted): the
 *     MongoDB checkpoint, as in at-least-once mode;
 *  2. an operator moved the MongoDB checkpoint (`token set`, `resume-from-token`: `setBy` is set, and
 *     every start's own write removes it): the operator's position, committed to Kafka before anything
 *     is published;
 *  3. otherwise the committed position wins: the mirror may trail it (a crash between a commit and its
 *     mirror write), never lead it, and resuming from the mirror would publish committed events again.
 *     Snapshot progress of the checkpoint's current snapshot is taken from it the same way.
 */
import type { CheckpointDoc } from '../checkpoint/checkpointStore.js';
import type { CommittedPosition } from '../sink/positions.js';

export type ResumeSource =
  'positions topic' | 'checkpoint (no committed position)' | 'checkpoint (set by operator)';

export function resumeCheckpoint(
  checkpointId: string,
  checkpoint: CheckpointDoc | null,
  committed: CommittedPosition | null,
): { checkpoint: CheckpointDoc | null; from: ResumeSource } {
  if (!committed) return { checkpoint, from: 'checkpoint (no committed position)' };
  if (checkpoint?.setBy) return { checkpoint, from: 'checkpoint (set by operator)' };
  const base: CheckpointDoc = checkpoint ?? {
    _id: checkpointId,
    token: null,
    clusterTime: null,
    counts: { published: 0, filtered: 0, deadLettered: 0 },
    writtenAt: new Date(0),
    fingerprint: null,
    watch: null,
  };
  const doc: CheckpointDoc = { ...base };
  if (committed.token) {
    doc.token = committed.token;
    doc.startAt = null;
    doc.clusterTime = committed.clusterTime;
  }
  const snap = committed.snapshot;
  if (snap && doc.snapshot && doc.snapshot.id === snap.planId) {
    const cursor = snap.cursor ?? doc.snapshot.cursor;
    const done = snap.streamStarted || cursor.done === true || doc.snapshot.state === 'done';
    doc.snapshot = { ...doc.snapshot, cursor, state: done ? 'done' : 'running' };
  }
  return { checkpoint: doc, from: 'positions topic' };
}
