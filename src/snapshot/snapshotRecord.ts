/**
 * An existing document becomes a Kafka record of the same contract as a change: the same topic,
 * partition key (namespace + document key), headers and value layout, with operation type `snapshot`,
 * the document as `fullDocument`, `documentKey: {_id}` and the cluster time of the snapshot's start
 * position. It goes through the same record builder as change events (toRecord), so options such as
 * the value format apply to it unchanged.
 *
 * The change ID is `snapshot:<snapshot id>:<db.coll>:<_id as canonical Extended JSON>`:
 *  - never a resume token's `_data` (those are hex strings; this starts with "snapshot:");
 *  - the same when the same snapshot copies the same document again after a crash (the snapshot ID
 *    is fixed in the checkpoint when the snapshot starts), so consumers drop the re-copy as a duplicate;
 *  - different in another snapshot (its ID holds that snapshot's start cluster time and number).
 */
import type { ChangeStreamDocument, Document, Timestamp } from 'mongodb';
import type { Position } from '../pipeline/ackWindow.js';
import type { ReadItem } from '../pipeline/readItem.js';
import { toRecord, type RecordOptions } from '../pipeline/toRecord.js';
import type { TopicRouter } from '../pipeline/topicRouter.js';
import type { ResumeToken } from '../source/resumeToken.js';
import { encodeId } from './idOrder.js';
import type { SnapshotCursor } from './snapshotPlan.js';

export const SNAPSHOT_OPERATION_TYPE = 'snapshot';
/** The token of a snapshot item's position: a stand-in, never persisted (see Position.snapshot). */
export const SNAPSHOT_STAND_IN_TOKEN: ResumeToken = { _data: '' };
export const SNAPSHOT_CHANGE_ID_PREFIX = 'snapshot:';

export function snapshotChangeId(snapshotId: string, ns: string, idJson: string): string {
  // idJson is `{"_id":...}`: keep only the value, the documented form.
  return `${SNAPSHOT_CHANGE_ID_PREFIX}${snapshotId}:${ns}:${idJson.slice(7, -1)}`;
}

/** Is this change ID one of a snapshot record (rather than a resume token's `_data`)? */
export const isSnapshotChangeId = (id: string): boolean => id.startsWith(SNAPSHOT_CHANGE_ID_PREFIX);

export interface SnapshotRecordContext {
  snapshotId: string;
  clusterTime: Timestamp;
  /** Stands in the position's token for snapshot items: the checkpointer never writes it as a token. */
  token: ResumeToken;
  router: TopicRouter;
  record: RecordOptions;
}

export function snapshotItem(
  doc: Document,
  db: string,
  coll: string,
  cursor: SnapshotCursor,
  c: SnapshotRecordContext,
): ReadItem {
  const idJson = encodeId(doc._id);
  const ns = `${db}.${coll}`;
  const changeId = { _data: snapshotChangeId(c.snapshotId, ns, idJson) };
  const event = {
    _id: changeId,
    operationType: SNAPSHOT_OPERATION_TYPE,
    clusterTime: c.clusterTime,
    ns: { db, coll },
    documentKey: { _id: doc._id as unknown },
    fullDocument: doc,
  };
  const record = toRecord(event as unknown as ChangeStreamDocument, changeId, c.router, c.record);
  const position: Position = { token: c.token, clusterTime: c.clusterTime, snapshot: cursor };
  return { kind: 'publish', position, record, readAt: performance.timeOrigin + performance.now() };
}

/** The item after a snapshot's last document: done on admission, it completes the snapshot's cursor. */
export function snapshotDoneItem(cursor: SnapshotCursor, c: SnapshotRecordContext): ReadItem {
  return {
    kind: 'tick',
    position: { token: c.token, clusterTime: c.clusterTime, snapshot: { ...cursor, done: true } },
  };
}
