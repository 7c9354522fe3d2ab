import type { IHeaders, KafkaMessage } from 'kafkajs';
import type { ChangeStreamDocument, ClientSession, Document, MongoClient, Timestamp } from 'mongodb';

/**
 * A change event as the relay published it, parsed back from Extended JSON into BSON types
 * (ObjectId, Date, Decimal128, Timestamp, Binary, ...). It has the shape of the driver's
 * `ChangeStreamDocument`; narrow it with `event.operationType`.
 *
 * Numbers: by default (`ejson.relaxed: false`) numbers arrive as BSON wrappers, but not always of their
 * type in MongoDB: the relay reads events with the driver's default promotion, so every integral number
 * (an Int32, an Int64, or a Double such as 2.0) arrives as an `Int32` when it fits 32 bits and as a `Long`
 * otherwise; other Doubles arrive as `Double`. With the relay's default relaxed JSON, integers beyond
 * ±2^53 are also rounded. See docs/consumer.md, "Numbers".
 */
export type ChangeEvent<TSchema extends Document = Document> =
  ChangeStreamDocument<TSchema> | SnapshotEvent<TSchema>;

/**
 * A document the relay copied in a snapshot (RELAY_SNAPSHOT, `mongo-kafka-relay snapshot`): its state
 * at some moment at or after `clusterTime` (the snapshot's start), before every change after that
 * start. Order it against changes by `clusterTime`, the change ID breaking ties (a snapshot's change ID
 * `snapshot:…` sorts after every resume token of the same cluster time, which it includes): see
 * docs/consumer.md, "Snapshots".
 */
export interface SnapshotEvent<TSchema extends Document = Document> {
  _id: { _data: string };
  operationType: 'snapshot';
  clusterTime: Timestamp;
  ns: { db: string; coll: string };
  documentKey: { _id: unknown };
  fullDocument: TSchema;
}

/** The Kafka record a change came from. */
export interface RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset (int64 as a decimal string, as kafkajs gives it). */
  readonly offset: string;
  /**
   * The record key as UTF-8, or null when the record had none: the change ID, or on a state topic
   * (RELAY_KEY=document) the document, `ns + "\0" + documentKey`.
   */
  readonly key: string | null;
  /** Headers decoded as UTF-8; for a header that occurs several times, the last value. */
  readonly headers: Readonly<Record<string, string>>;
  /** Record timestamp in milliseconds since the epoch (decimal string). */
  readonly timestamp: string;
  /** The record exactly as kafkajs delivered it (bytes of key, value and headers). */
  readonly message: KafkaMessage;
}

export interface HandlerContext {
  /** The change ID: the `change-id` header, or the record key when the header is missing or empty. */
  readonly changeId: string;
  readonly record: RecordMetadata;
  /** 1 for the first call for this record, 2 for the first retry, ... */
  readonly attempt: number;
  /**
   * Aborted when this call must stop: `stop()` was called (reason ConsumerStoppedError), a rebalance took
   * the partition away (PartitionRevokedError), or the call ran longer than `handlerTimeoutMs`
   * (HandlerTimeoutError). Pass it on (`fetch(url, { signal })`) and write nothing after it fired.
   */
  readonly signal: AbortSignal;
  /** Heartbeats to the consumer group. The helper already heartbeats during handlers; call it in tight loops if you like. */
  heartbeat(): Promise<void>;
}

/** One change of a batch handed to a batch handler. */
export interface ChangeBatchItem<TSchema extends Document = Document> {
  readonly event: ChangeEvent<TSchema>;
  /** The change ID: the `change-id` header, or the record key when the header is missing or empty. */
  readonly changeId: string;
  readonly record: RecordMetadata;
}

export interface BatchContext {
  readonly topic: string;
  readonly partition: number;
  /** 1 for the first call for this batch, 2 for the first retry, ... */
  readonly attempt: number;
  /** As HandlerContext.signal. */
  readonly signal: AbortSignal;
  heartbeat(): Promise<void>;
}

export interface TransactionalBatchContext extends BatchContext {
  /** The transaction that also inserts the batch's seen marks: pass it to every write that must commit with them. */
  readonly session: ClientSession;
  readonly mongoClient: MongoClient;
}

/**
 * Handles several changes of one partition at once (in offset order, each change once), e.g. one
 * Elasticsearch `_bulk` request or one `bulkWrite`. Throwing fails the whole batch.
 */
export type ChangeBatchHandler<TSchema extends Document, TContext extends BatchContext> = (
  items: ReadonlyArray<ChangeBatchItem<TSchema>>,
  context: TContext,
) => Promise<void> | void;

export interface TransactionalHandlerContext extends HandlerContext {
  /**
   * The session of the transaction the helper started. Pass it to every MongoDB operation
   * (`{ session }`) that must commit together with the seen mark. Operations without it are
   * not part of the transaction.
   */
  readonly session: ClientSession;
  /** The client the session belongs to (the one the helper uses for the seen collection). */
  readonly mongoClient: MongoClient;
}

export type ChangeHandler<TSchema extends Document, TContext extends HandlerContext> = (
  event: ChangeEvent<TSchema>,
  context: TContext,
) => Promise<void> | void;

/**
 * `idempotent-handler` (default): handle, then write the seen mark. At-least-once: a crash between
 * the two runs the handler again for that change, so the handler must be idempotent.
 *
 * `transactional`: the seen mark and the handler's writes through `context.session` commit in one
 * MongoDB transaction, so their effect happens once. Needs a replica set or sharded cluster.
 */
export type ConsumerMode = 'idempotent-handler' | 'transactional';

/** Why a record was sent to the dead-letter topic (the `dead-letter-reason` header). */
export type DeadLetterReason = 'handler-failed' | 'no-change-id' | 'decode-failed';

/** What happened to one record. */
export type RecordOutcome = 'handled' | 'duplicate' | 'dead-lettered';

/** Re-exported for callers building records by hand. */
export type { IHeaders };
