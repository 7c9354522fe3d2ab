/**
 * The options of `createChangeConsumer()`: their types, defaults and validation, in one place.
 * `resolveOptions` applies the defaults and throws ChangeConsumerConfigError naming a bad option.
 */
import type { ConsumerConfig, Kafka, KafkaConfig, ProducerConfig } from 'kafkajs';
import type { Document, MongoClient, MongoClientOptions, TransactionOptions } from 'mongodb';
import type { Registry } from 'prom-client';

import type { BackoffPolicy } from './backoff.js';
import { defaultDeadLetterTopic, type DeadLetterTopicFor } from './deadLetter.js';
import { ChangeConsumerConfigError } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { CommitPolicy } from './offsetCommitter.js';
import type { ErrorClassifier, RetryLimits } from './retryPolicy.js';
import type { TtlMismatchPolicy } from './seenStore.js';
import type {
  BatchContext,
  ChangeBatchHandler,
  ChangeHandler,
  ConsumerMode,
  HandlerContext,
  TransactionalBatchContext,
  TransactionalHandlerContext,
} from './types.js';

/** What `start()` does when a topic can keep records longer than the seen marks live. */
export type RetentionCheck = 'warn' | 'fail' | 'off';

export interface SeenOptions {
  /** Database of the seen collection. Default `mongo_kafka_relay`. */
  db?: string;
  /** The seen collection. Default `seen_changes`. Several consumer groups may share it (see `scope`). */
  collection?: string;
  /**
   * Whose marks these are. Default: the consumer group id, so each group handles each change once. Give a
   * group the scope of another only on purpose, e.g. when an application moves to a new group id.
   */
  scope?: string;
  /**
   * TTL of the marks. Default 1296000 (15 days). Must be at least 1, and longer than any record can stay
   * in the topics (checked at start, see `retentionCheck`).
   */
  expireAfterSeconds?: number;
  /** An index on `seenAt` with another TTL exists: `'extend'` (default), `'update'` or `'fail'`. */
  onTtlMismatch?: TtlMismatchPolicy;
  /** A topic keeps records longer than the marks live: `'warn'` (default), `'fail'` or `'off'`. */
  retentionCheck?: RetentionCheck;
  /** Marks are written at the end of each chunk, or once the oldest unwritten one is this old. Default 100 ms. */
  flushIntervalMs?: number;
}

export interface HandlerRetryOptions {
  /** Which errors are worth retrying. Default: all but PermanentHandlerError. */
  classify?: ErrorClassifier;
  /** Most handler calls per record before it is dead-lettered (including the first). Default: no limit. */
  attempts?: number;
  /** Longest time (ms) from a record's first failure to dead-lettering it. Default: no limit. */
  maxElapsedMs?: number;
  /** Delay before the first retry. Default 200 ms. */
  initialDelayMs?: number;
  /** Upper bound of a delay. Default 60 000 ms. */
  maxDelayMs?: number;
  /** Growth factor per retry. Default 2. */
  multiplier?: number;
  /** 0..1: random reduction of each delay. Default 0.5. */
  jitter?: number;
}

export interface OutageRetryOptions {
  /** First wait after the seen collection or the dead-letter publish failed. Default 500 ms. */
  initialDelayMs?: number;
  /** Longest wait between tries (they go on until success or stop). Default 30 000 ms. */
  maxDelayMs?: number;
}

export interface DeadLetterOptions {
  /** Dead-letter topic, or a function of the source topic. Default `<topic>.dlq`. It must exist. */
  topic?: string | DeadLetterTopicFor;
  /** Passed to `kafka.producer()` for the dead-letter producer. */
  producerConfig?: ProducerConfig;
}

export interface CommitOptions {
  /** Commit a partition's offset once this many records are done since its last commit. Default 1000. */
  everyRecords?: number;
  /** ... or once the oldest of them waited this long (ms). Default 5000. */
  intervalMs?: number;
}

/** A MongoClient the caller owns (not closed by `stop()`), or a URI the helper connects to and closes. */
export type MongoConnection = { client: MongoClient } | { uri: string; options?: MongoClientOptions };

export interface CommonConsumerOptions {
  /** A kafkajs `Kafka` instance, or its config (e.g. `{ brokers: ['localhost:9092'] }`). */
  kafka: Kafka | KafkaConfig;
  groupId: string;
  /** Topic names and/or RegExp patterns. A pattern must not match the dead-letter topics. */
  topics: string | RegExp | ReadonlyArray<string | RegExp>;
  /** Where a group without committed offsets starts. Default true (nothing is skipped). */
  fromBeginning?: boolean;
  /** Extra kafkajs consumer settings (sessionTimeout, rebalanceTimeout, heartbeatInterval, retry, ...). */
  consumerConfig?: Omit<ConsumerConfig, 'groupId'>;
  /** Partitions handled at the same time (records of one partition are always in order). Default 4. */
  partitionsConcurrently?: number;
  /** Most records per seen lookup, mark write and batch-handler call. Default 1000. */
  batchSize?: number;
  /** A handler call running longer is aborted through its signal and counts as a failed attempt. Default 30 000 ms. */
  handlerTimeoutMs?: number;
  /** `stop()` waits at most this long for the handler in hand. Default 30 000 ms. */
  stopTimeoutMs?: number;
  mongo: MongoConnection;
  seen?: SeenOptions;
  retry?: HandlerRetryOptions;
  /** How the partition waits while MongoDB or the dead-letter publish fails. */
  outageRetry?: OutageRetryOptions;
  deadLetter?: DeadLetterOptions;
  commit?: CommitOptions;
  /** prom-client registry for the metrics. Default: prom-client's global registry. */
  registry?: Registry;
  /** A pino logger (or anything with the same methods). Default: pino, level warn. */
  logger?: ConsumerLogger;
  /** Extended JSON parsing. `relaxed: false` (default) gives BSON number wrappers (Int32/Long/Double). */
  ejson?: { relaxed?: boolean };
  /** How often the helper heartbeats while a handler runs. Default 1000 ms (kafkajs sends only when due). */
  heartbeatIntervalMs?: number;
}

/** Exactly one of a per-record handler and a batch handler. */
export type HandlerChoice<TSchema extends Document, C extends HandlerContext, B extends BatchContext> =
  | { handler: ChangeHandler<TSchema, C>; batchHandler?: undefined }
  | { batchHandler: ChangeBatchHandler<TSchema, B>; handler?: undefined };

export type IdempotentHandlerConsumerOptions<TSchema extends Document = Document> = CommonConsumerOptions & {
  mode?: 'idempotent-handler';
} & HandlerChoice<TSchema, HandlerContext, BatchContext>;

export type TransactionalConsumerOptions<TSchema extends Document = Document> = CommonConsumerOptions & {
  mode: 'transactional';
  /** Options of each transaction. Default `{ readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' } }`, merged key by key with these. */
  transactionOptions?: TransactionOptions;
} & HandlerChoice<TSchema, TransactionalHandlerContext, TransactionalBatchContext>;

export type ChangeConsumerOptions<TSchema extends Document = Document> =
  IdempotentHandlerConsumerOptions<TSchema> | TransactionalConsumerOptions<TSchema>;

export const DEFAULTS = {
  seenDb: 'mongo_kafka_relay',
  seenCollection: 'seen_changes',
  expireAfterSeconds: 1_296_000,
  onTtlMismatch: 'extend' as TtlMismatchPolicy,
  retentionCheck: 'warn' as RetentionCheck,
  markFlushIntervalMs: 100,
  attempts: Infinity,
  maxElapsedMs: Infinity,
  initialDelayMs: 200,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.5,
  outageInitialDelayMs: 500,
  outageMaxDelayMs: 30_000,
  partitionsConcurrently: 4,
  batchSize: 1_000,
  handlerTimeoutMs: 30_000,
  stopTimeoutMs: 30_000,
  commitEveryRecords: 1_000,
  commitIntervalMs: 5_000,
  heartbeatIntervalMs: 1_000,
  fromBeginning: true,
} as const;

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly mode: ConsumerMode;
  readonly groupId: string;
  readonly topics: ReadonlyArray<string | RegExp>;
  readonly fromBeginning: boolean;
  readonly partitionsConcurrently: number;
  readonly batchSize: number;
  readonly handlerTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly seen: {
    readonly db: string;
    readonly collection: string;
    readonly scope: string;
    readonly expireAfterSeconds: number;
    readonly onTtlMismatch: TtlMismatchPolicy;
    readonly retentionCheck: RetentionCheck;
    readonly flushIntervalMs: number;
  };
  readonly retryLimits: RetryLimits;
  readonly classify: ErrorClassifier | undefined;
  readonly handlerBackoff: BackoffPolicy;
  readonly outageBackoff: BackoffPolicy;
  readonly commit: CommitPolicy;
  readonly deadLetterTopicFor: DeadLetterTopicFor;
  readonly relaxedEjson: boolean;
  readonly heartbeatIntervalMs: number;
}

function fail(message: string): never {
  throw new ChangeConsumerConfigError(message);
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) fail(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) fail(`${name} must be an integer >= 1, got ${value}`);
  return value;
}

/** A positive duration or count, or Infinity for "no limit". */
function limit(name: string, value: number): number {
  if (value === Infinity) return value;
  if (!Number.isFinite(value) || value <= 0)
    fail(`${name} must be a number > 0 or Infinity (no limit), got ${value}`);
  return value;
}

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${name} must be a non-empty string`);
  return value;
}

function oneOf<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    fail(`${name} must be ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`);
  }
  return value;
}

/** Applies defaults and checks every option; throws ChangeConsumerConfigError naming the bad one. */
export function resolveOptions(options: ChangeConsumerOptions<Document>): ResolvedOptions {
  const mode = options.mode ?? 'idempotent-handler';
  oneOf('mode', mode, ['idempotent-handler', 'transactional']);
  const hasHandler = typeof options.handler === 'function';
  const hasBatchHandler = typeof options.batchHandler === 'function';
  if (hasHandler === hasBatchHandler) {
    fail('give exactly one of handler (one record per call) and batchHandler (several records per call)');
  }
  if (!options.kafka || typeof options.kafka !== 'object')
    fail('kafka must be a kafkajs Kafka instance or config');
  if (!options.mongo || !('client' in options.mongo || 'uri' in options.mongo)) {
    fail('mongo must be { client: MongoClient } or { uri: string }');
  }
  const groupId = nonEmpty('groupId', options.groupId);

  const topicList: ReadonlyArray<string | RegExp> =
    typeof options.topics === 'string' || options.topics instanceof RegExp
      ? [options.topics]
      : options.topics;
  if (!Array.isArray(topicList) || topicList.length === 0)
    fail('topics must name at least one topic or pattern');
  for (const topic of topicList) {
    if (!(topic instanceof RegExp)) nonEmpty('each topic', topic);
  }

  const seen = options.seen ?? {};
  const expireAfterSeconds = seen.expireAfterSeconds ?? DEFAULTS.expireAfterSeconds;
  if (expireAfterSeconds === 0) {
    fail(
      'seen.expireAfterSeconds must be at least 1, got 0: MongoDB would remove every mark within a minute, ' +
        'so a redelivered change would be handled again (no dedupe)',
    );
  }
  if (!Number.isInteger(expireAfterSeconds) || expireAfterSeconds < 1 || expireAfterSeconds > 2_147_483_647) {
    fail(`seen.expireAfterSeconds must be an integer from 1 to 2147483647, got ${expireAfterSeconds}`);
  }

  const retry = options.retry ?? {};
  if (retry.classify !== undefined && typeof retry.classify !== 'function')
    fail('retry.classify must be a function');
  const attempts = limit('retry.attempts', retry.attempts ?? DEFAULTS.attempts);
  if (attempts !== Infinity) positiveInteger('retry.attempts', attempts);
  const handlerBackoff: BackoffPolicy = {
    initialDelayMs: nonNegative('retry.initialDelayMs', retry.initialDelayMs ?? DEFAULTS.initialDelayMs),
    maxDelayMs: nonNegative('retry.maxDelayMs', retry.maxDelayMs ?? DEFAULTS.maxDelayMs),
    multiplier: nonNegative('retry.multiplier', retry.multiplier ?? DEFAULTS.multiplier),
    jitter: nonNegative('retry.jitter', retry.jitter ?? DEFAULTS.jitter),
  };
  if (handlerBackoff.multiplier < 1) fail(`retry.multiplier must be >= 1, got ${handlerBackoff.multiplier}`);
  if (handlerBackoff.jitter > 1) fail(`retry.jitter must be between 0 and 1, got ${handlerBackoff.jitter}`);
  if (handlerBackoff.maxDelayMs < handlerBackoff.initialDelayMs) {
    fail('retry.maxDelayMs must be >= retry.initialDelayMs');
  }

  const outage = options.outageRetry ?? {};
  const outageBackoff: BackoffPolicy = {
    initialDelayMs: nonNegative(
      'outageRetry.initialDelayMs',
      outage.initialDelayMs ?? DEFAULTS.outageInitialDelayMs,
    ),
    maxDelayMs: nonNegative('outageRetry.maxDelayMs', outage.maxDelayMs ?? DEFAULTS.outageMaxDelayMs),
    multiplier: 2,
    jitter: 0.2,
  };
  if (outageBackoff.maxDelayMs < outageBackoff.initialDelayMs) {
    fail('outageRetry.maxDelayMs must be >= outageRetry.initialDelayMs');
  }

  const dlqTopic = options.deadLetter?.topic;
  let deadLetterTopicFor: DeadLetterTopicFor;
  if (dlqTopic === undefined) deadLetterTopicFor = defaultDeadLetterTopic;
  else if (typeof dlqTopic === 'function') deadLetterTopicFor = dlqTopic;
  else {
    const fixed = nonEmpty('deadLetter.topic', dlqTopic);
    deadLetterTopicFor = () => fixed;
  }

  return {
    mode,
    groupId,
    topics: topicList,
    fromBeginning: options.fromBeginning ?? DEFAULTS.fromBeginning,
    partitionsConcurrently: positiveInteger(
      'partitionsConcurrently',
      options.partitionsConcurrently ?? DEFAULTS.partitionsConcurrently,
    ),
    batchSize: positiveInteger('batchSize', options.batchSize ?? DEFAULTS.batchSize),
    handlerTimeoutMs: limit('handlerTimeoutMs', options.handlerTimeoutMs ?? DEFAULTS.handlerTimeoutMs),
    stopTimeoutMs: limit('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs),
    seen: {
      db: nonEmpty('seen.db', seen.db ?? DEFAULTS.seenDb),
      collection: nonEmpty('seen.collection', seen.collection ?? DEFAULTS.seenCollection),
      scope: nonEmpty('seen.scope', seen.scope ?? groupId),
      expireAfterSeconds,
      onTtlMismatch: oneOf('seen.onTtlMismatch', seen.onTtlMismatch ?? DEFAULTS.onTtlMismatch, [
        'extend',
        'update',
        'fail',
      ]),
      retentionCheck: oneOf('seen.retentionCheck', seen.retentionCheck ?? DEFAULTS.retentionCheck, [
        'warn',
        'fail',
        'off',
      ]),
      flushIntervalMs: nonNegative(
        'seen.flushIntervalMs',
        seen.flushIntervalMs ?? DEFAULTS.markFlushIntervalMs,
      ),
    },
    retryLimits: {
      attempts,
      maxElapsedMs: limit('retry.maxElapsedMs', retry.maxElapsedMs ?? DEFAULTS.maxElapsedMs),
    },
    classify: retry.classify,
    handlerBackoff,
    outageBackoff,
    commit: {
      everyRecords: positiveInteger(
        'commit.everyRecords',
        options.commit?.everyRecords ?? DEFAULTS.commitEveryRecords,
      ),
      intervalMs: nonNegative('commit.intervalMs', options.commit?.intervalMs ?? DEFAULTS.commitIntervalMs),
    },
    deadLetterTopicFor,
    relaxedEjson: options.ejson?.relaxed ?? false,
    heartbeatIntervalMs: positiveInteger(
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
    ),
  };
}
