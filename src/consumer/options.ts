import type { ConsumerConfig, Kafka, KafkaConfig, ProducerConfig } from 'kafkajs';
import type { Document, MongoClient, MongoClientOptions, TransactionOptions } from 'mongodb';
import type { Registry } from 'prom-client';

import type { BackoffPolicy } from './backoff.js';
import { defaultDeadLetterTopic, type DeadLetterTopicFor } from './dead-letter.js';
import { ChangeConsumerConfigError } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { TtlMismatchPolicy } from './seen-store.js';
import type { ChangeHandler, ConsumerMode, HandlerContext, TransactionalHandlerContext } from './types.js';

export interface SeenOptions {
  /** Database of the seen collection. Default `mongo_kafka_relay`. */
  db?: string;
  /**
   * The seen collection. Default `seen_changes`. A seen mark means "this application dealt with the change":
   * give every application (consumer group) that shares a MongoDB deployment its own collection.
   */
  collection?: string;
  /** TTL of seen marks. Default 604800 (7 days). Must exceed how far back the relay or a replay can re-publish. */
  expireAfterSeconds?: number;
  /** An index on `seenAt` with another TTL exists: `'update'` (default) changes it with collMod, `'fail'` refuses to start. */
  onTtlMismatch?: TtlMismatchPolicy;
}

export interface HandlerRetryOptions {
  /** Handler calls per record before it is dead-lettered (including the first). Default 5. */
  attempts?: number;
  /** Delay before the first retry. Default 200 ms. */
  initialDelayMs?: number;
  /** Upper bound of a delay. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Growth factor per retry. Default 2. */
  multiplier?: number;
  /** 0..1: random reduction of each delay. Default 0. */
  jitter?: number;
}

export interface OutageRetryOptions {
  /** First wait after the seen collection or the dead-letter publish failed. Default 500 ms. */
  initialDelayMs?: number;
  /** Longest wait between tries (they go on until success or stop). Default 30 000 ms. */
  maxDelayMs?: number;
}

export interface DeadLetterOptions {
  /** Dead-letter topic, or a function of the source topic. Default `<topic>.dlq`. */
  topic?: string | DeadLetterTopicFor;
  /** Passed to `kafka.producer()` for the dead-letter producer. */
  producerConfig?: ProducerConfig;
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
  /** Extra kafkajs consumer settings (sessionTimeout, heartbeatInterval, ...). */
  consumerConfig?: Omit<ConsumerConfig, 'groupId'>;
  /** Partitions handled at the same time (records of one partition are always one at a time, in order). Default 1. */
  partitionsConcurrently?: number;
  mongo: MongoConnection;
  seen?: SeenOptions;
  retry?: HandlerRetryOptions;
  /** How the partition waits while MongoDB or the dead-letter publish fails. */
  outageRetry?: OutageRetryOptions;
  deadLetter?: DeadLetterOptions;
  /** prom-client registry for the metrics. Default: prom-client's global registry. */
  registry?: Registry;
  /** A pino logger (or anything with the same methods). Default: pino, level warn. */
  logger?: ConsumerLogger;
  /** Extended JSON parsing. `relaxed: false` (default) keeps numbers as Int32/Double/Long. */
  ejson?: { relaxed?: boolean };
  /** How often the helper heartbeats while a handler runs. Default 1000 ms (kafkajs sends only when due). */
  heartbeatIntervalMs?: number;
}

export interface IdempotentHandlerConsumerOptions<
  TSchema extends Document = Document,
> extends CommonConsumerOptions {
  mode?: 'idempotent-handler';
  handler: ChangeHandler<TSchema, HandlerContext>;
}

export interface TransactionalConsumerOptions<
  TSchema extends Document = Document,
> extends CommonConsumerOptions {
  mode: 'transactional';
  handler: ChangeHandler<TSchema, TransactionalHandlerContext>;
  /** Options of each transaction (read/write concern, ...). Default: the client's. */
  transactionOptions?: TransactionOptions;
}

export type ChangeConsumerOptions<TSchema extends Document = Document> =
  IdempotentHandlerConsumerOptions<TSchema> | TransactionalConsumerOptions<TSchema>;

export const DEFAULTS = {
  seenDb: 'mongo_kafka_relay',
  seenCollection: 'seen_changes',
  expireAfterSeconds: 604_800,
  onTtlMismatch: 'update' as TtlMismatchPolicy,
  attempts: 5,
  initialDelayMs: 200,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: 0,
  outageInitialDelayMs: 500,
  outageMaxDelayMs: 30_000,
  partitionsConcurrently: 1,
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
  readonly seen: {
    readonly db: string;
    readonly collection: string;
    readonly expireAfterSeconds: number;
    readonly onTtlMismatch: TtlMismatchPolicy;
  };
  readonly attempts: number;
  readonly handlerBackoff: BackoffPolicy;
  readonly outageBackoff: BackoffPolicy;
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

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${name} must be a non-empty string`);
  return value;
}

/** Applies defaults and checks every option; throws ChangeConsumerConfigError naming the bad one. */
export function resolveOptions(options: ChangeConsumerOptions<Document>): ResolvedOptions {
  const mode = options.mode ?? 'idempotent-handler';
  if (mode !== 'idempotent-handler' && mode !== 'transactional') {
    fail(`mode must be 'idempotent-handler' or 'transactional', got ${String(mode)}`);
  }
  if (typeof options.handler !== 'function') fail('handler must be a function');
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
  if (!Number.isInteger(expireAfterSeconds) || expireAfterSeconds < 0 || expireAfterSeconds > 2_147_483_647) {
    fail(`seen.expireAfterSeconds must be an integer from 0 to 2147483647, got ${expireAfterSeconds}`);
  }
  const onTtlMismatch = seen.onTtlMismatch ?? DEFAULTS.onTtlMismatch;
  if (onTtlMismatch !== 'update' && onTtlMismatch !== 'fail') {
    fail(`seen.onTtlMismatch must be 'update' or 'fail', got ${String(onTtlMismatch)}`);
  }

  const retry = options.retry ?? {};
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
    seen: {
      db: nonEmpty('seen.db', seen.db ?? DEFAULTS.seenDb),
      collection: nonEmpty('seen.collection', seen.collection ?? DEFAULTS.seenCollection),
      expireAfterSeconds,
      onTtlMismatch,
    },
    attempts: positiveInteger('retry.attempts', retry.attempts ?? DEFAULTS.attempts),
    handlerBackoff,
    outageBackoff,
    deadLetterTopicFor,
    relaxedEjson: options.ejson?.relaxed ?? false,
    heartbeatIntervalMs: positiveInteger(
      'heartbeatIntervalMs',
      options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
    ),
  };
}
