import { Long, type ClientSession, type Collection, type Document } from 'mongodb';

import { TtlIndexMismatchError, TtlIndexUpdateError, errorMessage } from './errors.js';

/** One change the consumer has dealt with (handled or dead-lettered). `_id` is the change ID. */
export interface SeenDocument {
  _id: string;
  topic: string;
  partition: number;
  /** Kafka offset of the record that was handled (int64). */
  offset: Long;
  /** When the mark was written; the TTL index removes the mark `expireAfterSeconds` later. */
  seenAt: Date;
}

export type TtlMismatchPolicy = 'update' | 'fail';

export interface TtlIndexOutcome {
  readonly action: 'created' | 'unchanged' | 'updated';
  readonly indexName: string;
  /** For `updated`: the value the index had before (undefined: it had no TTL). */
  readonly previousExpireAfterSeconds?: number;
}

export interface SeenPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export const DEFAULT_TTL_INDEX_NAME = 'seenAt_ttl';

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

/**
 * The "seen" collection: which change IDs this consumer has already dealt with.
 * Owns its documents and its TTL index; knows nothing about Kafka.
 */
export class SeenStore {
  constructor(private readonly collection: Collection<SeenDocument>) {}

  get namespace(): string {
    return `${this.collection.dbName}.${this.collection.collectionName}`;
  }

  /**
   * Makes sure a TTL index on `seenAt` with `expireAfterSeconds` exists. Idempotent and safe to run
   * from several consumers at once. An index on `seenAt` with another (or no) TTL is changed with
   * `collMod` (`'update'`) or reported with TtlIndexMismatchError (`'fail'`).
   */
  async ensureTtlIndex(expireAfterSeconds: number, onMismatch: TtlMismatchPolicy): Promise<TtlIndexOutcome> {
    let created = false;
    // Two rounds cover a concurrent creator: inspect, create, inspect again.
    for (let round = 0; round < 3; round++) {
      const existing = await this.findSeenAtIndex();
      if (!existing) {
        try {
          await this.collection.createIndex(
            { seenAt: 1 },
            { name: DEFAULT_TTL_INDEX_NAME, expireAfterSeconds },
          );
          created = true;
        } catch (error) {
          const code = errorCode(error);
          if (code !== INDEX_OPTIONS_CONFLICT && code !== INDEX_KEY_SPECS_CONFLICT) throw error;
          // Someone created an index on seenAt meanwhile: look at it in the next round.
        }
        continue;
      }
      if (existing.expireAfterSeconds === expireAfterSeconds) {
        return { action: created ? 'created' : 'unchanged', indexName: existing.name };
      }
      if (onMismatch === 'fail') {
        throw new TtlIndexMismatchError(
          this.namespace,
          existing.name,
          existing.expireAfterSeconds,
          expireAfterSeconds,
        );
      }
      await this.updateTtl(existing, expireAfterSeconds);
      return {
        action: 'updated',
        indexName: existing.name,
        previousExpireAfterSeconds: existing.expireAfterSeconds,
      };
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

  async isSeen(changeId: string, session?: ClientSession): Promise<boolean> {
    const found = await this.collection.findOne(
      { _id: changeId },
      { projection: { _id: 1 }, ...(session ? { session } : {}) },
    );
    return found !== null;
  }

  /**
   * Records `changeId` as seen. Returns `'already-seen'` when a mark exists (another delivery won).
   * Inside a transaction (`session`), the caller must abort on `'already-seen'`: the server has aborted it.
   */
  async markSeen(
    changeId: string,
    position: SeenPosition,
    session?: ClientSession,
  ): Promise<'inserted' | 'already-seen'> {
    try {
      await this.collection.insertOne(
        {
          _id: changeId,
          topic: position.topic,
          partition: position.partition,
          offset: Long.fromString(position.offset),
          seenAt: new Date(),
        },
        session ? { session } : {},
      );
      return 'inserted';
    } catch (error) {
      if (isDuplicateKeyError(error)) return 'already-seen';
      throw error;
    }
  }
}
