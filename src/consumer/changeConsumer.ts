/**
 * The consumer helper's composition root and lifecycle: start in order (MongoDB, seen index, Kafka
 * checks, producer, consumer), stop in reverse, and report health.
 *
 * Invariant: a consumer that can no longer consume never looks healthy. A kafkajs crash without
 * restart turns `health()` to failed and rejects `closed`; `stop()` resolves `closed` and returns within
 * `stopTimeoutMs` (plus the time to close the connections) even if a handler never settles.
 */
import {
  Kafka,
  Partitioners,
  logLevel,
  type Admin,
  type Consumer,
  type KafkaConfig,
  type Producer,
} from 'kafkajs';
import { MongoClient, type Document } from 'mongodb';

import { DeadLetterPublisher } from './deadLetter.js';
import {
  IdempotentHandlerDelivery,
  TransactionalDelivery,
  assertTransactionsSupported,
  type DeliveryStrategy,
} from './delivery.js';
import {
  ConsumerCrashedError,
  ConsumerStoppedError,
  RetentionExceedsTtlError,
  describeRetentionFinding,
  errorMessage,
} from './errors.js';
import { childLogger, defaultLogger, kafkaLogCreator, type ConsumerLogger } from './logging.js';
import { ConsumerMetrics } from './metrics.js';
import { OffsetCommitter } from './offsetCommitter.js';
import { resolveOptions, type ChangeConsumerOptions, type ResolvedOptions } from './options.js';
import { PartitionStates, createEachBatchHandler, type BlockedPartition } from './partitionRunner.js';
import { RecordProcessor } from './recordProcessor.js';
import { describeRetention, findRetentionBeyondTtl, minimumSafeTtlSeconds } from './retentionCheck.js';
import { SeenStore, type SeenDocument, type TtlIndexOutcome } from './seenStore.js';

export type ConsumerStatus = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** What `health()` reports; wire `healthy` into a liveness probe, `blocked` into alerts. */
export interface ConsumerHealth {
  readonly status: ConsumerStatus;
  /** True while running: started, not stopped, and kafkajs has not given up on the consumer. */
  readonly healthy: boolean;
  /** kafkajs consumer crashes so far (each restarted by kafkajs, except a last one that made status 'failed'). */
  readonly crashes: number;
  readonly lastCrash?: { readonly at: Date; readonly error: string; readonly restarting: boolean };
  /** Partitions waiting before their next record (a handler retry, MongoDB, the dead-letter topic). */
  readonly blocked: readonly BlockedPartition[];
}

function isKafkaInstance(value: Kafka | KafkaConfig): value is Kafka {
  return typeof (value as Kafka).consumer === 'function' && typeof (value as Kafka).producer === 'function';
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<'done' | 'timed-out'> {
  if (!Number.isFinite(ms)) return promise.then(() => 'done');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed-out'>((resolve) => {
    timer = setTimeout(() => resolve('timed-out'), ms);
  });
  return Promise.race([promise.then(() => 'done' as const), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Consumes the relay's topics and hands each change, once per change ID and consumer group, to a
 * handler. Create with `createChangeConsumer()`, then `start()`; `stop()` finishes the record in hand.
 */
export class ChangeConsumer<TSchema extends Document = Document> {
  /** Resolves after `stop()`; rejects with ConsumerCrashedError when kafkajs gave up on the consumer. */
  readonly closed: Promise<void>;
  private readonly settings: ResolvedOptions;
  private readonly baseLogger: ConsumerLogger;
  private readonly logger: ConsumerLogger;
  private readonly metrics: ConsumerMetrics;
  private readonly abort = new AbortController();
  private readonly partitions: PartitionStates;
  private state: ConsumerStatus = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private mongoClient: MongoClient | undefined;
  private ownsMongoClient = false;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private ttlOutcome: TtlIndexOutcome | undefined;
  private crashes = 0;
  private lastCrash: ConsumerHealth['lastCrash'];
  private resolveClosed!: () => void;
  private rejectClosed!: (error: Error) => void;

  constructor(private readonly options: ChangeConsumerOptions<TSchema>) {
    this.settings = resolveOptions(options as ChangeConsumerOptions<Document>);
    this.baseLogger = options.logger ?? defaultLogger();
    this.logger = childLogger(this.baseLogger, {
      component: 'change-consumer',
      groupId: this.settings.groupId,
    });
    this.metrics = new ConsumerMetrics(options.registry);
    this.partitions = new PartitionStates(this.metrics, this.settings.groupId);
    this.closed = new Promise<void>((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    // Awaiting `closed` is optional: an unobserved crash must not also become an unhandled rejection.
    this.closed.catch(() => undefined);
  }

  get mode(): ResolvedOptions['mode'] {
    return this.settings.mode;
  }

  /** True between a successful `start()` and `stop()` (or a crash kafkajs does not restart). */
  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** What `start()` did to the TTL index of the seen collection. */
  get ttlIndex(): TtlIndexOutcome | undefined {
    return this.ttlOutcome;
  }

  health(): ConsumerHealth {
    return {
      status: this.state,
      healthy: this.state === 'running',
      crashes: this.crashes,
      ...(this.lastCrash ? { lastCrash: this.lastCrash } : {}),
      blocked: this.partitions.blocked(),
    };
  }

  /**
   * Connects to MongoDB (unless a client was passed), ensures the seen collection's TTL index, checks
   * the dead-letter topics and the topics' retention, connects the dead-letter producer and the consumer,
   * subscribes and starts consuming. Resolves once consumption has started; rejects (after cleaning up)
   * when any step fails.
   */
  start(): Promise<void> {
    if (this.state !== 'new') {
      return (
        this.startPromise ??
        Promise.reject(new Error('A ChangeConsumer can be started once; create another one'))
      );
    }
    this.state = 'starting';
    this.startPromise = this.doStart().then(
      () => {
        if (this.state === 'starting') this.state = 'running';
      },
      async (error: unknown) => {
        await this.shutdown();
        this.state = 'stopped';
        this.rejectClosed(error instanceof Error ? error : new Error(String(error)));
        throw error;
      },
    );
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    const { settings, options } = this;
    const client = await this.connectMongo();
    const collection = client.db(settings.seen.db).collection<SeenDocument>(settings.seen.collection);
    const store = new SeenStore(collection, settings.seen.scope);
    await this.ensureTtlIndex(store);

    let delivery: DeliveryStrategy<TSchema>;
    if (options.mode === 'transactional') {
      await assertTransactionsSupported(client, store, options.transactionOptions);
      delivery = new TransactionalDelivery<TSchema>(
        options.batchHandler
          ? { kind: 'batch', handler: options.batchHandler }
          : { kind: 'record', handler: options.handler },
        client,
        store,
        options.transactionOptions,
      );
    } else {
      delivery = new IdempotentHandlerDelivery<TSchema>(
        options.batchHandler
          ? { kind: 'batch', handler: options.batchHandler }
          : { kind: 'record', handler: options.handler },
      );
    }

    const kafka = isKafkaInstance(options.kafka)
      ? options.kafka
      : new Kafka({
          ...options.kafka,
          logLevel: options.kafka.logLevel ?? logLevel.INFO,
          logCreator:
            options.kafka.logCreator ??
            kafkaLogCreator(
              childLogger(this.baseLogger, { component: 'kafkajs', groupId: settings.groupId }),
            ),
        });

    this.admin = kafka.admin();
    await this.admin.connect();
    const sourceTopics = await this.subscribedTopics(this.admin);
    // Short internal retries: a failed dead-letter publish pauses the partition and is tried again later.
    this.producer = kafka.producer({
      retry: { retries: 2, maxRetryTime: 5_000 },
      createPartitioner: Partitioners.DefaultPartitioner,
      ...options.deadLetter?.producerConfig,
    });
    const deadLetters = new DeadLetterPublisher(
      this.producer,
      this.admin,
      settings.deadLetterTopicFor,
      settings.groupId,
    );
    await deadLetters.checkTopics(sourceTopics);
    await this.checkRetention(this.admin, sourceTopics);
    await this.producer.connect();

    const processor = new RecordProcessor<TSchema>({
      store,
      delivery,
      deadLetters,
      metrics: this.metrics,
      logger: this.logger,
      settings: {
        retryLimits: settings.retryLimits,
        handlerBackoff: settings.handlerBackoff,
        outageBackoff: settings.outageBackoff,
        classify: settings.classify,
        handlerTimeoutMs: settings.handlerTimeoutMs,
        relaxedEjson: settings.relaxedEjson,
        markFlushIntervalMs: settings.seen.flushIntervalMs,
      },
    });
    const committer = new OffsetCommitter(settings.commit, this.logger);

    const consumer = kafka.consumer({ ...options.consumerConfig, groupId: settings.groupId });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => this.onCrash(event.payload.error, event.payload.restart));
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assigned = new Map(Object.entries(event.payload.memberAssignment));
      this.partitions.afterRebalance(consumer, assigned, (topic, partition) =>
        committer.forget(topic, partition),
      );
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [...settings.topics], fromBeginning: settings.fromBeginning });
    } catch (error) {
      throw new Error(
        `Could not subscribe to ${settings.topics.map(String).join(', ')}: ${errorMessage(error)}. ` +
          `Do the topics exist (the relay creates them at start with KAFKA_CREATE_TOPICS=true)?`,
        { cause: error },
      );
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: settings.partitionsConcurrently,
      eachBatch: createEachBatchHandler({
        processor,
        committer,
        partitions: this.partitions,
        logger: this.logger,
        stopSignal: this.abort.signal,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        batchSize: settings.batchSize,
      }),
    });
    this.logger.info(
      {
        mode: settings.mode,
        topics: settings.topics.map(String),
        seen: store.namespace,
        scope: settings.seen.scope,
        partitionsConcurrently: settings.partitionsConcurrently,
        batchSize: settings.batchSize,
      },
      'change consumer started',
    );
  }

  private async ensureTtlIndex(store: SeenStore): Promise<void> {
    const { seen } = this.settings;
    this.ttlOutcome = await store.ensureTtlIndex(seen.expireAfterSeconds, seen.onTtlMismatch);
    const fields = {
      seen: store.namespace,
      ...this.ttlOutcome,
      configuredExpireAfterSeconds: seen.expireAfterSeconds,
    };
    switch (this.ttlOutcome.action) {
      case 'kept-longer':
        this.logger.warn(
          fields,
          'the seen collection keeps a longer TTL than configured (set by another application?): marks live longer, ' +
            "which is safe; set seen.onTtlMismatch to 'update' to shorten it",
        );
        break;
      case 'updated':
        this.logger.warn(fields, 'changed the TTL of the seen collection');
        break;
      default:
        this.logger.info(fields, 'seen collection TTL index ready');
    }
  }

  /** The topic names subscribed now (RegExp patterns matched against the topics that exist). */
  private async subscribedTopics(admin: Admin): Promise<string[]> {
    const names = new Set<string>();
    const patterns = this.settings.topics.filter((topic): topic is RegExp => topic instanceof RegExp);
    for (const topic of this.settings.topics) if (typeof topic === 'string') names.add(topic);
    if (patterns.length > 0) {
      for (const topic of await admin.listTopics()) {
        if (patterns.some((pattern) => pattern.test(topic))) names.add(topic);
      }
    }
    return [...names];
  }

  private async checkRetention(admin: Admin, topics: readonly string[]): Promise<void> {
    const { expireAfterSeconds, retentionCheck } = this.settings.seen;
    if (retentionCheck === 'off' || topics.length === 0) return;
    const existing = new Set(await admin.listTopics());
    const findings = findRetentionBeyondTtl(
      expireAfterSeconds,
      await describeRetention(
        admin,
        topics.filter((topic) => existing.has(topic)),
      ),
    );
    if (findings.length === 0) return;
    const error = new RetentionExceedsTtlError(findings, expireAfterSeconds, minimumSafeTtlSeconds(findings));
    if (retentionCheck === 'fail') throw error;
    this.logger.warn(
      {
        expireAfterSeconds,
        topics: findings.map((finding) => ({ ...finding, why: describeRetentionFinding(finding) })),
        fix: error.message,
      },
      'a topic can keep records longer than the seen marks live (retention): a replay from the earliest offset would handle old changes again',
    );
  }

  private onCrash(error: Error, restart: boolean): void {
    this.crashes++;
    this.lastCrash = { at: new Date(), error: errorMessage(error), restarting: restart };
    this.metrics.crashes.inc({ group: this.settings.groupId, restart: String(restart) });
    this.logger.error(
      { err: errorMessage(error), restart, crashes: this.crashes },
      restart
        ? 'kafka consumer crashed; kafkajs restarts it'
        : 'kafka consumer crashed and kafkajs will not restart it',
    );
    if (restart || (this.state !== 'running' && this.state !== 'starting')) return;
    this.state = 'failed';
    const crashed = new ConsumerCrashedError(this.settings.groupId, error);
    void this.shutdown().finally(() => this.rejectClosed(crashed));
  }

  private async connectMongo(): Promise<MongoClient> {
    const { mongo } = this.options;
    if ('client' in mongo) {
      this.mongoClient = mongo.client;
      return mongo.client;
    }
    const client = new MongoClient(mongo.uri, mongo.options);
    this.mongoClient = client;
    this.ownsMongoClient = true;
    await client.connect();
    return client;
  }

  /**
   * Stops consuming: the handler in hand is told through its signal and given up to `stopTimeoutMs` to
   * finish (if it succeeds, its record is committed; otherwise that record comes again later), then the
   * consumer leaves the group and the consumer, the dead-letter producer and (if the helper opened it) the
   * MongoDB client are closed. A MongoClient passed in stays open. Safe to call more than once.
   */
  stop(): Promise<void> {
    if (!this.stopPromise) {
      this.stopPromise = this.doStop();
    }
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      this.resolveClosed();
      return;
    }
    if (this.state === 'starting') {
      this.abort.abort(new ConsumerStoppedError());
      await this.startPromise?.catch(() => undefined);
    }
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    await this.shutdown();
    this.state = 'stopped';
    this.logger.info({}, 'change consumer stopped');
    this.resolveClosed();
  }

  private async shutdown(): Promise<void> {
    this.abort.abort(new ConsumerStoppedError());
    this.partitions.clear();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) {
      // disconnect() stops the runner, waits for the batch in hand (which waits for its handler), then
      // leaves the group.
      const disconnected = consumer
        .disconnect()
        .catch((error: unknown) =>
          this.logger.warn({ err: errorMessage(error) }, 'kafka consumer disconnect failed'),
        );
      if ((await withTimeout(disconnected, this.settings.stopTimeoutMs)) === 'timed-out') {
        this.logger.error(
          { stopTimeoutMs: this.settings.stopTimeoutMs },
          'stop: the handler in hand did not finish within stopTimeoutMs; its record stays uncommitted and ' +
            'comes again (the consumer leaves the group once the handler returns or handlerTimeoutMs passes)',
        );
      }
    }
    await this.producer
      ?.disconnect()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, 'dead-letter producer disconnect failed'),
      );
    await this.admin
      ?.disconnect()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, 'kafka admin disconnect failed'),
      );
    if (this.ownsMongoClient) {
      await this.mongoClient
        ?.close()
        .catch((error: unknown) =>
          this.logger.warn({ err: errorMessage(error) }, 'MongoDB client close failed'),
        );
    }
    this.producer = undefined;
    this.admin = undefined;
  }
}

/** Creates a ChangeConsumer (not started yet). Throws ChangeConsumerConfigError for invalid options. */
export function createChangeConsumer<TSchema extends Document = Document>(
  options: ChangeConsumerOptions<TSchema>,
): ChangeConsumer<TSchema> {
  return new ChangeConsumer<TSchema>(options);
}
