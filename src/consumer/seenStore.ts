/**
 * The "seen" collection: which change IDs a consumer group (a *scope*) has dealt with, and how.
 *
 * Invariant: a mark exists for (scope, change ID) only once that change was handled (its handler's
 * effect is done, or committed with the mark in transactional mode) or published to the dead-letter
 * topic. The partition runner commits an offset only after the marks of every record before it exist.
 *
 * Owns the mark documents and the TTL index; knows nothing about Kafka.
 */
import {
  Long,
  MongoBulkWriteError,
  type AnyBulkWriteOperation,
  type ClientSession,
  type Collection,
  type Document,
  type Filter,
} from 'mongodb';

import { TtlIndexMismatchError, TtlIndexUpdateError, errorMessage } from './errors.js';
import type { DeadLetterReason } from './types.js';

/**
 * A mark's `_id`: `<scope>:<changeId>`. A string rather than a subdocument: `$in` lookups on string keys
 * are cheap everywhere. Unambiguous, because a change ID (a resume token's hex `_data`) holds no `:`.
 */
export function seenKey(scope: string, changeId: string): string {
  return `${scope}:${changeId}`;
}

/**
 * `handled`: the handler succeeded. `dead-lettered`: the record went to the dead-letter topic.
 * `redrive-pending`: a re-drive re-published the record; until it is handled again the mark counts as
 * not seen (it is replaced by the next outcome).
 */
export type SeenOutcome = 'handled' | 'dead-lettered' | 'redrive-pending';

/** One change a consumer group has dealt with. */
export interface SeenDocument {
  /** `seenKey(scope, changeId)`. */
  _id: string;
  /** Whose mark this is: by default the consumer group id. */
  scope: string;
  changeId: string;
  topic: string;
  partition: number;
  /** Kafka offset of the record that was dealt with (int64). */
  offset: Long;
  /** When the mark was written; the TTL index removes the mark `expireAfterSeconds` later. */
  seenAt: Date;
  outcome: SeenOutcome;
  /** For `dead-lettered`: why, and where the record went. */
  deadLetter?: {
    reason: DeadLetterReason;
    error: string;
    topic: string;
    attempts: number;
  };
}

/** What the processor knows about a mark it wants written. */
export interface SeenMark {
  readonly changeId: string;
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset as a decimal string (as kafkajs gives it). */
  readonly offset: string;
  readonly outcome: 'handled' | 'dead-lettered';
  readonly deadLetter?: SeenDocument['deadLetter'];
}

/**
 * What to do with the TTL index: `extend` (default) raises a shorter TTL and keeps a longer one (several
 * applications may share the collection: none may shorten another's dedupe window); `update` sets
 * exactly the configured TTL, shorter or longer; `fail` refuses any difference.
 */
export type TtlMismatchPolicy = 'extend' | 'update' | 'fail';

export interface TtlIndexOutcome {
  readonly action: 'created' | 'unchanged' | 'updated' | 'kept-longer';
  readonly indexName: string;
  /** The TTL the index has now (seconds); undefined when the index has no TTL at all (kept, marks never expire). */
  readonly expireAfterSeconds: number | undefined;
  /** For `updated`: the value the index had before (undefined: it had no TTL). */
  readonly previousExpireAfterSeconds?: number;
}

export type TtlAction = 'create' | 'unchanged' | 'update' | 'kept-longer' | 'fail';

/**
 * The TTL decision, pure. `existing`: null when there is no index on `seenAt`; undefined when the index
 * has no `expireAfterSeconds` (its marks never expire, which is longer than any TTL).
 */
export function decideTtlAction(
  existing: number | undefined | null,
  configured: number,
  policy: TtlMismatchPolicy,
): TtlAction {
  if (existing === null) return 'create';
  if (existing === configured) return 'unchanged';
  if (policy === 'fail') return 'fail';
  if (policy === 'update') return 'update';
  const longer = existing === undefined || existing > configured;
  return longer ? 'kept-longer' : 'update';
}

export const TTL_INDEX_NAME = 'seenAt_ttl';

const NAMESPACE_NOT_FOUND = 26;
const INDEX_OPTIONS_CONFLICT = 85;
const INDEX_KEY_SPECS_CONFLICT = 86;
const DUPLICATE_KEY = 11000;

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

export function isDuplicateKeyError(error: unknown): boolean {
  return errorCode(error) === DUPLICATE_KEY;
}

interface SeenAtIndex {
  readonly name: string;
  readonly expireAfterSeconds: number | undefined;
}

/** A single-field index on `seenAt` (the only kind of index MongoDB applies a TTL to). */
function asSeenAtIndex(index: Document): SeenAtIndex | undefined {
  const key = index.key as Document | undefined;
  if (!key) return undefined;
  const fields = Object.keys(key);
  if (fields.length !== 1 || fields[0] !== 'seenAt') return undefined;
  const ttl = index.expireAfterSeconds as unknown;
  return {
    name: String(index.name),
    expireAfterSeconds: ttl === undefined || ttl === null ? undefined : Number(ttl),
  };
}

/** The mark document for `mark` in `scope`, written now. */
export function seenDocument(scope: string, mark: SeenMark, now: Date = new Date()): SeenDocument {
  const doc: SeenDocument = {
    _id: seenKey(scope, mark.changeId),
    scope,
    changeId: mark.changeId,
    topic: mark.topic,
    partition: mark.partition,
    offset: Long.fromString(mark.offset),
    seenAt: now,
    outcome: mark.outcome,
  };
  if (mark.deadLetter) doc.deadLetter = mark.deadLetter;
  return doc;
}

/** The marks of one scope in one collection. */
export class SeenStore {
  constructor(
    private readonly collection: Collection<SeenDocument>,
    readonly scope: string,
  ) {}

  get namespace(): string {
    return `${this.collection.dbName}.${this.collection.collectionName}`;
  }

  private key(changeId: string): string {
    return seenKey(this.scope, changeId);
  }

  /**
   * Makes sure a TTL index on `seenAt` exists and applies `policy` to one with another TTL. Idempotent and
   * safe to run from several consumers at once.
   */
  async ensureTtlIndex(expireAfterSeconds: number, policy: TtlMismatchPolicy): Promise<TtlIndexOutcome> {
    let created = false;
    // Rounds cover a concurrent creator: inspect, create, inspect again.
    for (let round = 0; round < 3; round++) {
      const existing = await this.findSeenAtIndex();
      const action = decideTtlAction(
        existing ? existing.expireAfterSeconds : null,
        expireAfterSeconds,
        policy,
      );
      if (action === 'create' || !existing) {
        try {
          await this.collection.createIndex({ seenAt: 1 }, { name: TTL_INDEX_NAME, expireAfterSeconds });
          created = true;
        } catch (error) {
          const code = errorCode(error);
          if (code !== INDEX_OPTIONS_CONFLICT && code !== INDEX_KEY_SPECS_CONFLICT) throw error;
          // Someone created an index on seenAt meanwhile: look at it in the next round.
        }
        continue;
      }
      switch (action) {
        case 'unchanged':
          return { action: created ? 'created' : 'unchanged', indexName: existing.name, expireAfterSeconds };
        case 'kept-longer':
          return {
            action: 'kept-longer',
            indexName: existing.name,
            expireAfterSeconds: existing.expireAfterSeconds,
          };
        case 'fail':
          throw new TtlIndexMismatchError(
            this.namespace,
            existing.name,
            existing.expireAfterSeconds,
            expireAfterSeconds,
          );
        case 'update':
          await this.updateTtl(existing, expireAfterSeconds);
          return {
            action: 'updated',
            indexName: existing.name,
            expireAfterSeconds,
            previousExpireAfterSeconds: existing.expireAfterSeconds,
          };
      }
    }
    throw new Error(`The TTL index on ${this.namespace} did not settle; is another process changing it?`);
  }

  private async updateTtl(index: SeenAtIndex, expireAfterSeconds: number): Promise<void> {
    try {
      await this.collection.db.command({
        collMod: this.collection.collectionName,
        index: { name: index.name, expireAfterSeconds },
      });
    } catch (error) {
      throw new TtlIndexUpdateError(
        this.namespace,
        index.name,
        expireAfterSeconds,
        `the server refused collMod (${errorMessage(error)})`,
        { cause: error },
      );
    }
    const after = await this.findSeenAtIndex();
    if (after?.expireAfterSeconds !== expireAfterSeconds) {
      throw new TtlIndexUpdateError(
        this.namespace,
        index.name,
        expireAfterSeconds,
        `collMod succeeded but the index now has expireAfterSeconds=${String(after?.expireAfterSeconds)}`,
      );
    }
  }

  private async findSeenAtIndex(): Promise<SeenAtIndex | undefined> {
    let indexes: Document[];
    try {
      indexes = await this.collection.listIndexes().toArray();
    } catch (error) {
      if (errorCode(error) === NAMESPACE_NOT_FOUND) return undefined;
      throw error;
    }
    for (const index of indexes) {
      const seenAt = asSeenAtIndex(index);
      if (seenAt) return seenAt;
    }
    return undefined;
  }

  /**
   * Which of `changeIds` this scope has dealt with: one `$in` query on `_id` (nothing else in the
   * filter, so that every server answers it from the `_id` index; `redrive-pending` is filtered here).
   */
  async findSeen(changeIds: readonly string[], session?: ClientSession): Promise<Set<string>> {
    if (changeIds.length === 0) return new Set();
    const filter = { _id: { $in: changeIds.map((changeId) => this.key(changeId)) } } as Filter<SeenDocument>;
    const found = await this.collection
      .find(filter, { projection: { changeId: 1, outcome: 1 }, ...(session ? { session } : {}) })
      .toArray();
    return new Set(found.filter((doc) => doc.outcome !== 'redrive-pending').map((doc) => doc.changeId));
  }

  /**
   * Writes marks in bulk (outside any transaction). A mark that already exists was written by another
   * delivery of the same change, which is fine; a `redrive-pending` one is replaced.
   */
  async writeMarks(marks: readonly SeenMark[]): Promise<void> {
    if (marks.length === 0) return;
    const now = new Date();
    const docs = marks.map((mark) => seenDocument(this.scope, mark, now));
    let duplicates: SeenDocument[] = [];
    try {
      await this.collection.insertMany(docs, { ordered: false });
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) throw error;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      if (writeErrors.length === 0 || writeErrors.some((e) => e.code !== DUPLICATE_KEY)) throw error;
      duplicates = writeErrors.map((e) => docs[e.index]!);
    }
    if (duplicates.length === 0) return;
    // Only re-driven changes are overwritten: a handled or dead-lettered mark stays as it is.
    const replacements: AnyBulkWriteOperation<SeenDocument>[] = duplicates.map((doc) => ({
      replaceOne: { filter: { _id: doc._id, outcome: 'redrive-pending' }, replacement: doc },
    }));
    await this.collection.bulkWrite(replacements, { ordered: false });
  }

  /**
   * Inserts marks inside the transaction of `session`, in order. Resolves `'already-seen'` when one of
   * them exists (another delivery won); the server has then aborted the transaction.
   */
  async insertMarksInTransaction(
    marks: readonly SeenMark[],
    session: ClientSession,
  ): Promise<'inserted' | 'already-seen'> {
    const now = new Date();
    try {
      for (const mark of marks) {
        const doc = seenDocument(this.scope, mark, now);
        // Upsert over a redrive-pending mark; any other existing mark makes the upsert's insert collide.
        await this.collection.replaceOne({ _id: doc._id, outcome: 'redrive-pending' }, doc, {
          upsert: true,
          session,
        });
      }
      return 'inserted';
    } catch (error) {
      if (isDuplicateKeyError(error)) return 'already-seen';
      throw error;
    }
  }

  /** The marks of `changeIds` in this scope, by change ID. */
  async readMarks(changeIds: readonly string[]): Promise<Map<string, SeenDocument>> {
    if (changeIds.length === 0) return new Map();
    const docs = await this.collection
      .find({ _id: { $in: changeIds.map((changeId) => this.key(changeId)) } } as Filter<SeenDocument>)
      .toArray();
    return new Map(docs.map((doc) => [doc.changeId, doc]));
  }

  /**
   * Marks dead-lettered (or already pending) changes as `redrive-pending`, so that their next delivery is
   * handled. Returns the change IDs it applies to; handled marks are left alone.
   */
  async markRedrivePending(changeIds: readonly string[]): Promise<number> {
    if (changeIds.length === 0) return 0;
    const result = await this.collection.updateMany(
      {
        _id: { $in: changeIds.map((changeId) => this.key(changeId)) },
        outcome: { $in: ['dead-lettered', 'redrive-pending'] },
      } as Filter<SeenDocument>,
      { $set: { outcome: 'redrive-pending', seenAt: new Date() } },
    );
    return result.matchedCount;
  }
}
