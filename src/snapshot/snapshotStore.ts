/**
 * How snapshot progress lands in the checkpoint document: the fields a fenced checkpoint write sets
 * (the checkpoint store runs the write; this module only says what it contains).
 */
import type { Document } from 'mongodb';
import { decodeId } from './idOrder.js';
import type { SnapshotCursor } from './snapshotPlan.js';

export function snapshotProgressUpdate(
  cursor: SnapshotCursor | undefined,
  streamStarted: boolean,
  writtenAt: Date,
): Document {
  const set: Document = {};
  if (cursor) {
    set['snapshot.cursor'] = cursor;
    if (cursor.lastIdJson !== undefined) set['snapshot.lastId'] = decodeId(cursor.lastIdJson);
  }
  if (cursor?.done || streamStarted) {
    set['snapshot.state'] = 'done';
    set['snapshot.completedAt'] = writtenAt;
  }
  return set;
}
