/**
 * Reads a snapshot: every document of the plan's collections, from its cursor on, in `_id` order
 * (idOrder.ts), as items ready for the pump — one publish item per document, then one "done" item.
 * It runs where the change stream is read (the reader thread, or the pump's thread), before the
 * stream's first item, so the snapshot's records are published before any change after its start.
 *
 * Reads go in batches (the driver's cursor batch size); the caller reads only as far as its in-flight
 * limits allow, exactly as with the stream. A transient error reopens the scan after the last document
 * handed out, with backoff; any other error is thrown (the relay exits; the next start resumes from
 * the persisted cursor).
 *
 * Invariant: items come in cursor order; each item's position carries the cursor right after its
 * document, so the checkpointer may persist it once the ack window released that item.
 */
import type { Document, FindCursor, MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { ReadItem } from '../pipeline/readItem.js';
import { classifyStreamError, errorReason } from '../source/errors.js';
import { classIndexOf, className, decodeId, encodeId, nextRange, type IdCursor } from './idOrder.js';
import type { SnapshotPlan } from './snapshotPlan.js';
import { snapshotDoneItem, snapshotItem, type SnapshotRecordContext } from './snapshotRecord.js';

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
}

export class SnapshotReader {
  private index: number;
  private idCursor: IdCursor;
  private copied: number;
  /** The type class being scanned, and the last one found exhausted (null: none since the last _id). */
  private scanClass = 0;
  private exhaustedClass: number | null = null;
  private cursor: FindCursor<Document> | null = null;
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
        : { started: true, lastId: decodeId(c.lastIdJson), ...(classIndex === undefined ? {} : { classIndex }) };
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
          { index: this.index, lastIdJson: idJson, lastIdClass: className(this.scanClass), copied: this.copied },
          this.context,
        );
      } catch (error) {
        await this.closeCursor();
        if (this.closed) return null;
        const ns = `${target.db}.${target.coll}`;
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
        this.cursor = this.client
          .db(db)
          .collection(coll)
          .find(range.filter, {
            sort: { _id: 1 },
            hint: { _id: 1 },
            batchSize: this.options.batchSize,
            ...(range.min ? { min: range.min } : {}),
          });
      }
      const doc = await this.cursor.tryNext();
      if (doc && this.skipIdJson !== undefined && encodeId(doc._id) === this.skipIdJson) continue;
      if (doc) return doc;
      // This class is exhausted: the next range is the next class, from its start.
      await this.closeCursor();
      this.exhaustedClass = this.scanClass;
    }
  }

  private async closeCursor(): Promise<void> {
    const cursor = this.cursor;
    this.cursor = null;
    // Reopened after an error, the scan resumes after the last _id handed out.
    this.exhaustedClass = null;
    await cursor?.close().catch(() => undefined);
  }
}
