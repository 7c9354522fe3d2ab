/**
 * Reads a snapshot: every document of the plan's collections, from its cursor on, in `_id` order
 * (idOrder.ts), as items ready for the pump — one publish item per document, then one "done" item.
 * It runs where the change stream is read (the reader thread, or the pump's thread), before the
 * stream's first item, so the snapshot's records are published before any change after its start.
 *
 * Reads go in batches (the driver's cursor batch size); the caller reads only as far as its in-flight
 * limits allow, exactly as with the stream. A transient error reopens the scan after the last document
 * handed out, with backoff; any other error is thrown (the relay exits; the next start resumes from
 * the persisted cursor). A document the driver cannot decode (BSONError: a string that is not UTF-8,
 * which MongoDB stores as sent) would fail every read at the same place, a crash loop: it takes the
 * RELAY_ON_UNREADABLE_EVENT path of the change stream instead — its `_id` is read alone, and it
 * becomes a dead-letter record naming it (`skip`) or exit 7 (`fail`). When the `_id` itself cannot be
 * decoded, the walk could not resume exactly after it, so the relay stops with exit 7 either way.
 *
 * Invariant: items come in cursor order; each item's position carries the cursor right after its
 * document, so the checkpointer may persist it once the ack window released that item.
 */
import { BSON, type Document, type FindCursor, type MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { ReadItem } from '../pipeline/readItem.js';
import { deadLetterFor } from '../pipeline/toRecord.js';
import { classifyStreamError, errorReason } from '../source/errors.js';
import {
  UNREADABLE_REASON_TEXT,
  UnreadableEventError,
  describeChange,
  type UnreadablePolicy,
} from '../source/unreadableEvent.js';
import {
  classIndexOf,
  className,
  decodeId,
  encodeId,
  nextRange,
  type IdCursor,
  type IdRange,
} from './idOrder.js';
import type { SnapshotPlan } from './snapshotPlan.js';
import {
  SNAPSHOT_OPERATION_TYPE,
  snapshotChangeId,
  snapshotDoneItem,
  snapshotItem,
  type SnapshotRecordContext,
} from './snapshotRecord.js';

export class SnapshotReadError extends Error {
  constructor(
    readonly ns: string,
    override readonly cause: unknown,
  ) {
    super(`the snapshot cannot read ${ns}: ${(cause as Error).message}`);
    this.name = 'SnapshotReadError';
  }
}

export interface SnapshotReaderOptions {
  batchSize: number;
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** RELAY_ON_UNREADABLE_EVENT, for documents the driver cannot decode (default skip). */
  onUnreadableEvent?: UnreadablePolicy;
  /** Where a skipped document is named (RELAY_DEAD_LETTER_TOPIC). */
  deadLetterTopic: string;
}

const UNDECODABLE = 'undecodable';

/** The driver could not decode the next document of `range`'s scan. */
class UndecodableDocument extends Error {
  constructor(
    readonly range: IdRange,
    override readonly cause: unknown,
  ) {
    super((cause as Error).message);
    this.name = 'UndecodableDocument';
  }
}

export class SnapshotReader {
  private index: number;
  private idCursor: IdCursor;
  private copied: number;
  /** The type class being scanned, and the last one found exhausted (null: none since the last _id). */
  private scanClass = 0;
  private exhaustedClass: number | null = null;
  private cursor: FindCursor<Document> | null = null;
  /** The range the open cursor scans. */
  private openRange: IdRange | null = null;
  /** The `_id` (canonical Extended JSON) the open scan starts at and must not hand out again. */
  private skipIdJson: string | undefined;
  private finished = false;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly client: MongoClient,
    private readonly plan: SnapshotPlan,
    private readonly context: SnapshotRecordContext,
    private readonly options: SnapshotReaderOptions,
  ) {
    const c = plan.cursor;
    this.index = c.done ? plan.collections.length : c.index;
    const classIndex = classIndexOf(c.lastIdClass);
    this.idCursor =
      c.lastIdJson === undefined
        ? { started: false }
        : {
            started: true,
            lastId: decodeId(c.lastIdJson),
            ...(classIndex === undefined ? {} : { classIndex }),
          };
    this.copied = c.copied;
  }

  /** The next item, or null after the "done" item (or once closed). */
  async next(): Promise<ReadItem | null> {
    while (!this.closed && !this.finished) {
      const target = this.plan.collections[this.index];
      if (!target) {
        this.finished = true;
        return snapshotDoneItem({ index: this.index, copied: this.copied }, this.context);
      }
      try {
        const doc = await this.nextDocument(target.db, target.coll);
        this.failures = 0;
        if (doc === null) {
          this.index += 1;
          this.idCursor = { started: false };
          this.exhaustedClass = null;
          continue;
        }
        this.idCursor = { started: true, lastId: doc._id, classIndex: this.scanClass };
        this.copied += 1;
        const idJson = encodeId(doc._id);
        return snapshotItem(
          doc,
          target.db,
          target.coll,
          {
            index: this.index,
            lastIdJson: idJson,
            lastIdClass: className(this.scanClass),
            copied: this.copied,
          },
          this.context,
        );
      } catch (error) {
        await this.closeCursor();
        if (this.closed) return null;
        const ns = `${target.db}.${target.coll}`;
        if (error instanceof UndecodableDocument)
          return await this.undecodable(target.db, target.coll, error.range, error.cause);
        if (classifyStreamError(error) !== 'transient') throw new SnapshotReadError(ns, error);
        this.failures += 1;
        const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 15000 };
        const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures - 1, 16));
        this.options.logger.warn(
          { err: error, reason: errorReason(error), ns, retryInMs: delay },
          'snapshot read failed; reopening after the last document copied',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.closeCursor();
  }

  /** The next document of the collection after the cursor, walking the _id type classes; null at its end. */
  private async nextDocument(db: string, coll: string): Promise<Document | null> {
    for (;;) {
      if (!this.cursor) {
        const range = nextRange(this.idCursor, this.exhaustedClass);
        if (!range) return null;
        this.scanClass = range.classIndex;
        this.skipIdJson = range.skipIdJson;
        this.openRange = range;
        this.cursor = this.find(db, coll, range, { batchSize: this.options.batchSize });
      }
      const doc = await this.tryNext(this.cursor);
      if (doc && this.skipIdJson !== undefined && encodeId(doc._id) === this.skipIdJson) continue;
      if (doc) return doc;
      // This class is exhausted: the next range is the next class, from its start.
      await this.closeCursor();
      this.exhaustedClass = this.scanClass;
    }
  }

  private async tryNext(cursor: FindCursor<Document>): Promise<Document | null> {
    try {
      return await cursor.tryNext();
    } catch (error) {
      // isBSONError, not instanceof: the driver may bring its own copy of the bson package.
      if (BSON.BSONError.isBSONError(error) && this.openRange)
        throw new UndecodableDocument(this.openRange, error);
      throw error;
    }
  }

  private find(db: string, coll: string, range: IdRange, extra: Document): FindCursor<Document> {
    return this.client
      .db(db)
      .collection(coll)
      .find(range.filter, {
        sort: { _id: 1 },
        hint: { _id: 1 },
        // As the change stream's events (src/source/rawEvent.ts): a regular expression as stored, not a
        // JS RegExp (which loses options, and which a PCRE-only pattern cannot even be made into).
        bsonRegExp: true,
        ...(range.min ? { min: range.min } : {}),
        ...extra,
      });
  }

  /**
   * The scan of `failed` met a document the driver cannot decode: the first one of that range not
   * handed out yet. Reads its `_id` alone, then names it in a dead-letter item (skip) or throws.
   */
  private async undecodable(db: string, coll: string, failed: IdRange, error: unknown): Promise<ReadItem> {
    const ns = `${db}.${coll}`;
    const c = this.idCursor;
    // Documents of this scan were handed out: the culprit follows the last of them; else it opens the scan.
    const range = c.started && c.classIndex === failed.classIndex ? nextRange(c, null) : failed;
    let id: unknown;
    let idDecodes = true;
    const probe = (validate: boolean): Promise<Document[]> =>
      this.find(db, coll, range ?? failed, {
        projection: { _id: 1 },
        limit: 2,
        enableUtf8Validation: validate,
      }).toArray();
    try {
      const docs = await probe(true);
      id = docs.find((d) => encodeId(d._id) !== range?.skipIdJson)?._id;
    } catch (idError) {
      if (!BSON.BSONError.isBSONError(idError)) throw new SnapshotReadError(ns, idError);
      idDecodes = false;
      const docs = await probe(false).catch(() => []);
      id = docs[0]?._id;
    }
    const changeId = id === undefined ? '?' : snapshotChangeId(this.context.snapshotId, ns, encodeId(id));
    const named = {
      _id: { _data: changeId },
      operationType: SNAPSHOT_OPERATION_TYPE,
      ns: { db, coll },
      ...(id === undefined ? {} : { documentKey: { _id: id } }),
    };
    if (this.options.onUnreadableEvent === 'fail' || !idDecodes || id === undefined)
      throw new UnreadableEventError(UNDECODABLE, named, error);
    const detail = `${UNREADABLE_REASON_TEXT[UNDECODABLE]}: ${(error as Error).message}`;
    this.options.logger.error(
      { changeId, reason: UNDECODABLE, detail },
      `${describeChange(named)} cannot be read; RELAY_ON_UNREADABLE_EVENT=skip: a dead-letter record names it, the snapshot moves on`,
    );
    this.idCursor = { started: true, lastId: id, classIndex: failed.classIndex };
    this.copied += 1;
    const cursor = {
      index: this.index,
      lastIdJson: encodeId(id),
      lastIdClass: className(failed.classIndex),
      copied: this.copied,
    };
    const item = snapshotItem({ _id: id }, db, coll, cursor, this.context);
    if (item.kind !== 'publish') throw new Error('unreachable: a snapshot document is a publish item');
    return {
      ...item,
      record: deadLetterFor(item.record, UNDECODABLE, detail, this.options.deadLetterTopic),
      deadLetter: UNDECODABLE,
    };
  }

  private async closeCursor(): Promise<void> {
    const cursor = this.cursor;
    this.cursor = null;
    this.openRange = null;
    // Reopened after an error, the scan resumes after the last _id handed out.
    this.exhaustedClass = null;
    await cursor?.close().catch(() => undefined);
  }
}
