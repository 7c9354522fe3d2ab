/**
 * Events the change stream cannot deliver, and what the relay does about them.
 *
 * MongoDB fails the cursor — not just the event — when it cannot return an event: BSONObjectTooLarge
 * (10334) for an event over 16 MB that was not split, 7182500 when `$changeStreamSplitLargeEvent`
 * could not split it (one top-level field alone is over 16 MB), and NoMatchingDocument (47)
 * when `fullDocument: required` / `fullDocumentBeforeChange: required` finds no post-/pre-image (the
 * image expired or was never recorded). The driver fails it too, with a BSONError, when an event holds
 * bytes it cannot decode: MongoDB does not validate UTF-8 on writes, so a client that skips validation
 * (or writes raw BSON) can store a string that is not UTF-8, and every later read of that change fails
 * the same way (the BSON corpus's decode-error cases are this family; test/unit/relay/bsonCorpus.test.ts). Retrying fails again at the same position, forever: without a
 * policy that is a crash loop. RELAY_ON_UNREADABLE_EVENT decides:
 *  - `skip` (default): a dead-letter record names the change (change ID, namespace, document key,
 *    operation type, cluster time) and the relay moves past it;
 *  - `fail`: the relay stops with exit code 7 and a message naming the change and the options.
 * To NAME the change the relay re-reads that one event in a narrow form the server can deliver: with
 * only the fields that identify it (`$project` after every other stage, as MongoDB's docs advise for
 * events near 16 MB), for a missing image with `whenAvailable` instead of `required`, and without the
 * driver's UTF-8 validation, so a bad string in the document key still lets the change be named (its
 * bad bytes then show as U+FFFD in the name; the event's data is never published that way).
 */
import { BSON, MongoServerError, type Document } from 'mongodb';

export type UnreadableKind =
  'too-large-for-mongodb' | 'post-image-missing' | 'pre-image-missing' | 'undecodable';

export type UnreadablePolicy = 'skip' | 'fail';

const BSON_OBJECT_TOO_LARGE = 10334;
/** `$changeStreamSplitLargeEvent` could not split the event: one top-level field alone is over 16 MB. */
const SPLIT_FRAGMENT_TOO_LARGE = 7182500;
const NO_MATCHING_DOCUMENT = 47;

export interface ImageOptions {
  fullDocument: 'default' | 'updateLookup' | 'whenAvailable' | 'required';
  fullDocumentBeforeChange: 'off' | 'whenAvailable' | 'required';
}

/** Which kind of undeliverable event an error of the change stream reports, or null. */
export function classifyUnreadable(error: unknown, images: ImageOptions): UnreadableKind | null {
  // isBSONError, not instanceof: the error may come from another copy of the bson package.
  if (BSON.BSONError.isBSONError(error)) return 'undecodable';
  if (!(error instanceof MongoServerError)) return null;
  const tooLarge = [BSON_OBJECT_TOO_LARGE, SPLIT_FRAGMENT_TOO_LARGE];
  if (tooLarge.includes(Number(error.code)) || error.codeName === 'BSONObjectTooLarge')
    return 'too-large-for-mongodb';
  if (error.code !== NO_MATCHING_DOCUMENT && error.codeName !== 'NoMatchingDocument') return null;
  const pre = images.fullDocumentBeforeChange === 'required';
  const post = images.fullDocument === 'required';
  if (pre && (!post || /pre-?image|before/i.test(error.message))) return 'pre-image-missing';
  if (post) return 'post-image-missing';
  return null;
}

const IDENTITY_FIELDS = {
  _id: 1,
  operationType: 1,
  ns: 1,
  to: 1,
  documentKey: 1,
  clusterTime: 1,
  wallTime: 1,
  txnNumber: 1,
  lsid: 1,
} as const;

/** The fields of `event` that name it (what a narrow read returns), for a dead-letter record. */
export function identityOf(event: Document): Document {
  const named: Document = {};
  for (const field of Object.keys(IDENTITY_FIELDS))
    if (event[field] !== undefined) named[field] = event[field];
  return named;
}

/** How to re-read the one event narrowly: options the server can deliver it with. */
export function narrowRead(images: ImageOptions): {
  tail: Document[];
  images: ImageOptions;
  enableUtf8Validation: false;
} {
  return {
    // Only what names the change (an inclusion, so fields a RELAY_PIPELINE stage added go too). `_id`
    // stays: it is the resume token, and changing it would make the stream unresumable.
    tail: [{ $project: IDENTITY_FIELDS }],
    images: {
      fullDocument: images.fullDocument === 'required' ? 'whenAvailable' : images.fullDocument,
      fullDocumentBeforeChange:
        images.fullDocumentBeforeChange === 'required' ? 'whenAvailable' : images.fullDocumentBeforeChange,
    },
    enableUtf8Validation: false,
  };
}

export const UNREADABLE_REASON_TEXT: Record<UnreadableKind, string> = {
  'too-large-for-mongodb':
    'the change event is larger than 16 MB, which MongoDB cannot return (BSONObjectTooLarge); it was not split',
  'post-image-missing':
    'RELAY_FULL_DOCUMENT=required, but the post-image of the change no longer exists (NoMatchingDocument)',
  'pre-image-missing':
    'RELAY_FULL_DOCUMENT_BEFORE_CHANGE=required, but the pre-image of the change no longer exists (NoMatchingDocument)',
  undecodable:
    'the change event holds bytes the driver cannot decode (BSONError; for example a string that is not UTF-8, stored by a client that skips validation)',
};

/** "the change <id> (update of db.coll {_id: 1} at 1700000000.1)", from the narrow event. */
export function describeChange(event: Document | null): string {
  if (!event) return 'the change after the checkpoint (it could not be read even without its large fields)';
  const e = event as {
    _id?: { _data?: string };
    operationType?: string;
    ns?: { db?: string; coll?: string };
    documentKey?: unknown;
    clusterTime?: { high: number; low: number };
  };
  const ns = e.ns ? (e.ns.coll ? `${e.ns.db}.${e.ns.coll}` : e.ns.db) : '';
  const key = e.documentKey !== undefined ? ` ${JSON.stringify(e.documentKey)}` : '';
  const at = e.clusterTime ? ` at cluster time ${e.clusterTime.high}.${e.clusterTime.low}` : '';
  return `the change ${e._id?._data ?? '?'} (${e.operationType ?? '?'} of ${ns || '?'}${key}${at})`;
}

export class UnreadableEventError extends Error {
  constructor(
    readonly kind: UnreadableKind,
    readonly event: Document | null,
    override readonly cause: unknown,
  ) {
    super(
      `${describeChange(event)} cannot be read: ${UNREADABLE_REASON_TEXT[kind]}: ${(cause as Error).message}`,
    );
    this.name = 'UnreadableEventError';
  }
}
