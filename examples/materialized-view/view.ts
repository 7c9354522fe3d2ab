/**
 * The materialized view: one document per source document holding its latest state, built from change
 * events that may arrive more than once (at-least-once delivery, replays) and, across partitions or
 * replays, out of order. The rule that makes it correct: never apply a change over a newer one.
 */
import {
  Long,
  Timestamp,
  type Binary,
  type ClientSession,
  type Collection,
  type Decimal128,
  type Document,
  type Filter,
  type ObjectId,
} from 'mongodb';

import {
  PermanentHandlerError,
  RecordHeader,
  type ChangeEvent,
  type RecordMetadata,
} from '../../src/consumer/index.js';

/** Where a change sits in the source's history: cluster time first, then the resume token. */
export interface ChangePosition {
  readonly clusterTime: Timestamp;
  /** The resume token `_data` (the change ID); orders changes with the same cluster time (one transaction). */
  readonly changeId: string;
}

/** A view document's `_id`: the source document's `_id` (any BSON value MongoDB allows as `_id`). */
export type ViewKey = ObjectId | string | number | Long | Decimal128 | Binary | Date | Document;

/** Stored on every view document: the change that produced its current state. */
export interface AppliedChange extends ChangePosition {
  readonly operationType: string;
}

/**
 * View documents carry the source document's fields plus `_applied`; a deleted source document leaves
 * a tombstone `{ _id, _applied, _deleted: true, _deletedAt }` so that an older, replayed change cannot
 * bring it back. Tombstones expire through the TTL index on `_deletedAt` (see ensureViewIndexes).
 * `_applied`, `_deleted` and `_deletedAt` are reserved field names in the view.
 */
export interface ViewDocument extends Document {
  _id: ViewKey;
  _applied: AppliedChange;
  _deleted?: true;
  _deletedAt?: Date;
}

export type ApplyOutcome = 'applied' | 'stale' | 'ignored';

const DUPLICATE_KEY = 11000;

/** 2^53: from here on a JSON number (relaxed Extended JSON) may not hold the exact integer. */
const EXACT_INTEGER_LIMIT = Long.fromNumber(Number.MAX_SAFE_INTEGER).add(1);

/** The path of the first integer of magnitude >= 2^53 in `value` (parsed with relaxed: false), if any. */
export function inexactIntegerPath(value: unknown, path = ''): string | undefined {
  if (value instanceof Long) {
    return value.greaterThanOrEqual(EXACT_INTEGER_LIMIT) ||
      value.lessThanOrEqual(EXACT_INTEGER_LIMIT.negate())
      ? path || '(value)'
      : undefined;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = inexactIntegerPath(item, `${path}[${index}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      const found = inexactIntegerPath(item, path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Refuses (as permanent: the record is dead-lettered) a record in relaxed Extended JSON whose document
 * holds an integer of magnitude 2^53 or more: relaxed JSON writes such a value as a JSON number, so its
 * exact value may already be lost, and the view would silently hold a different number. Canonical
 * records carry it exactly. Every other number is applied as docs/consumer.md ("Numbers") says.
 */
export function assertExactNumbers(event: ChangeEvent, record: RecordMetadata): void {
  const contentType = record.headers[RecordHeader.contentType] ?? '';
  if (!/format=relaxed/.test(contentType)) return;
  const path = inexactIntegerPath((event as { fullDocument?: unknown }).fullDocument);
  if (path === undefined) return;
  throw new PermanentHandlerError(
    `fullDocument.${path} is an integer beyond ±2^53 in a relaxed Extended JSON record: its exact value may ` +
      `have been lost. Run the relay with RELAY_VALUE_FORMAT=canonical, then re-drive this dead letter.`,
  );
}

/** Orders two change positions: negative when `a` happened before `b`. */
export function compareChangePosition(a: ChangePosition, b: ChangePosition): -1 | 0 | 1 {
  if (a.clusterTime.t !== b.clusterTime.t) return a.clusterTime.t < b.clusterTime.t ? -1 : 1;
  if (a.clusterTime.i !== b.clusterTime.i) return a.clusterTime.i < b.clusterTime.i ? -1 : 1;
  if (a.changeId === b.changeId) return 0;
  return a.changeId < b.changeId ? -1 : 1;
}

/**
 * Query for view documents that a change at `position` may overwrite: those with no applied change yet
 * and those whose applied change is older. Strings compare in binary order in MongoDB's default
 * collation, as in JavaScript, so the server agrees with compareChangePosition.
 */
export function olderThan(position: ChangePosition): Document {
  return {
    $or: [
      { _applied: { $exists: false } },
      { '_applied.clusterTime': { $lt: position.clusterTime } },
      { '_applied.clusterTime': position.clusterTime, '_applied.changeId': { $lt: position.changeId } },
    ],
  };
}

export function positionOf(event: ChangeEvent): ChangePosition {
  const changeId = (event._id as { _data?: unknown } | undefined)?._data;
  if (typeof changeId !== 'string')
    throw new PermanentHandlerError('change event has no resume token _id._data');
  if (!(event.clusterTime instanceof Timestamp))
    throw new PermanentHandlerError('change event has no clusterTime');
  return { clusterTime: event.clusterTime, changeId };
}

/** The view document a change produces, or undefined for events that do not change a document. */
export function viewDocumentFor(event: ChangeEvent, now: Date = new Date()): ViewDocument | undefined {
  const position = positionOf(event);
  const applied: AppliedChange = { ...position, operationType: event.operationType };
  switch (event.operationType) {
    // A snapshot record is the document's state as of its clusterTime or later: applied like a replace,
    // and stale against any change after it (see docs/consumer.md, "Snapshots").
    case 'snapshot':
    case 'insert':
    case 'replace':
    case 'update': {
      const key = event.documentKey._id as ViewKey;
      const fullDocument = event.fullDocument as Document | null | undefined;
      if (fullDocument === undefined) {
        throw new PermanentHandlerError(
          `${event.operationType} event without fullDocument: run the relay with fullDocument 'updateLookup' (or 'required')`,
        );
      }
      // updateLookup found no document: it was deleted after this update; keep a tombstone.
      if (fullDocument === null) return { _id: key, _applied: applied, _deleted: true, _deletedAt: now };
      return { ...fullDocument, _id: key, _applied: applied };
    }
    case 'delete':
      return { _id: event.documentKey._id as ViewKey, _applied: applied, _deleted: true, _deletedAt: now };
    default:
      return undefined;
  }
}

/**
 * Applies one change to the view unless the view already holds this change or a newer one.
 * Idempotent, so it suits both consumer modes; pass the transaction's `session` in transactional mode.
 *
 * Without a transaction a single conditional upsert does it: `{ _id, $or: [older...] }` matches an older
 * state and replaces it, or matches nothing and inserts; when a newer state exists, the insert hits the
 * `_id` index with a duplicate-key error, which means "stale". Inside a transaction a duplicate-key
 * error would abort the whole transaction, so the current state is read first (snapshot-consistent;
 * concurrent writers surface as retried write conflicts).
 */
export async function applyChangeToView(
  collection: Collection<ViewDocument>,
  event: ChangeEvent,
  session?: ClientSession,
): Promise<ApplyOutcome> {
  const replacement = viewDocumentFor(event);
  if (replacement === undefined) return 'ignored';
  const position: ChangePosition = replacement._applied;
  const sessionOption = session ? { session } : {};
  const byId = { _id: replacement._id } as Filter<ViewDocument>;

  if (session?.inTransaction()) {
    const current = await collection.findOne(byId, { projection: { _applied: 1 }, session });
    if (current?._applied && compareChangePosition(current._applied, position) >= 0) return 'stale';
  }
  try {
    const result = await collection.replaceOne({ ...byId, ...olderThan(position) }, replacement, {
      upsert: true,
      ...sessionOption,
    });
    return result.matchedCount > 0 || result.upsertedCount > 0 ? 'applied' : 'stale';
  } catch (error) {
    if ((error as { code?: unknown }).code === DUPLICATE_KEY) return 'stale';
    throw error;
  }
}

/** TTL index that removes tombstones after `tombstoneTtlSeconds` (keep it >= the consumer's seen TTL). */
export async function ensureViewIndexes(
  collection: Collection<ViewDocument>,
  tombstoneTtlSeconds: number,
): Promise<void> {
  await collection.createIndex(
    { _deletedAt: 1 },
    { name: 'tombstone_ttl', expireAfterSeconds: tombstoneTtlSeconds },
  );
}
