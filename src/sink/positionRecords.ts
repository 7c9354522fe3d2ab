/**
 * The records the exactly-once sink writes to the positions topic itself: the position of each
 * transaction, and the marker a start commits to know how far it must read (positionsReader.ts).
 * Both go to the checkpoint id's partition, so reading up to the marker reads every position before
 * it; they are settled inside their transaction and never resolved to a caller.
 */
import { pendingRecord, type PendingRecord } from './pendingRecord.js';
import { encodePosition, type CommittedPosition } from './positions.js';
import { markerKey } from './positionsReader.js';

export interface PositionsTopic {
  readonly topic: string;
  readonly checkpointId: string;
}

/** The position record of a transaction that commits at `at`. */
export function positionRecord(to: PositionsTopic, position: CommittedPosition, at: number): PendingRecord {
  const value = encodePosition(to.checkpointId, position, new Date(at));
  return positionsTopicRecord(to, to.checkpointId, value, 'position');
}

/** The start's marker record, with a value no other start can have. */
export function markerRecord(to: PositionsTopic, marker: string): PendingRecord {
  return positionsTopicRecord(to, markerKey(to.checkpointId), marker, 'position-marker');
}

function positionsTopicRecord(to: PositionsTopic, key: string, value: string, kind: string): PendingRecord {
  return pendingRecord(
    {
      topic: to.topic,
      key,
      value,
      headers: {},
      partitionKey: Buffer.from(to.checkpointId),
      size: key.length + value.length,
      ns: '',
      operationType: kind,
    },
    () => undefined,
    () => undefined,
  );
}
