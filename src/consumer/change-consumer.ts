import { Kafka, Partitioners, logLevel, type Consumer, type KafkaConfig, type Producer } from 'kafkajs';
import { MongoClient, type Document } from 'mongodb';

import { DeadLetterPublisher } from './dead-letter.js';
import {
  IdempotentHandlerDelivery,
  TransactionalDelivery,
  assertTransactionsSupported,
  type DeliveryStrategy,
} from './delivery.js';
import { errorMessage } from './errors.js';
import { childLogger, defaultLogger, kafkaLogCreator, type ConsumerLogger } from './logging.js';
import { ConsumerMetrics } from './metrics.js';
import { resolveOptions, type ChangeConsumerOptions, type ResolvedOptions } from './options.js';
import { createEachBatchHandler } from './partition-runner.js';
import { RecordProcessor } from './record-processor.js';
import { SeenStore, type SeenDocument, type TtlIndexOutcome } from './seen-store.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

function isKafkaInstance(value: Kafka | KafkaConfig): value is Kafka {
  return typeof (value as Kafka).consumer === 'function' && typeof (value as Kafka).producer === 'function';
}

/**
 * Consumes the relay's topics and hands each change, once per change ID, to a handler.
 * Create with `createChangeConsumer()`, then `start()`; `stop()` finishes the record in hand.
 */
export class ChangeConsumer<TSchema extends Document = Document> {
  private readonly settings: ResolvedOptions;
  private readonly baseLogger: ConsumerLogger;
  private readonly logger: ConsumerLogger;
  private readonly metrics: ConsumerMetrics;
  private readonly abort = new AbortController();
  private state: State = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private mongoClient: MongoClient | undefined;
  private ownsMongoClient = false;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private ttlOutcome: TtlIndexOutcome | undefined;

  constructor(private readonly options: ChangeConsumerOptions<TSchema>) {
    this.settings = resolveOptions(options as ChangeConsumerOptions<Document>);
    this.baseLogger = options.logger ?? defaultLogger();
    this.logger = childLogger(this.baseLogger, {
      component: 'change-consumer',
      groupId: this.settings.groupId,
    });
    this.metrics = new ConsumerMetrics(options.registry);
  }

  get mode(): ResolvedOptions['mode'] {
    return this.settings.mode;
  }

  /** True between a successful `start()` and `stop()`. */
  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** What `start()` did to the TTL index of the seen collection. */
  get ttlIndex(): TtlIndexOutcome | undefined {
    return this.ttlOutcome;
  }

  /**
   * Connects to MongoDB (unless a client was passed), ensures the seen collection's TTL index,
   * connects the dead-letter producer and the consumer, subscribes and starts consuming. Resolves once
   * consumption has started; rejects (after cleaning up) when any step fails.
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
        throw error;
      },
    );
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    const { settings, options } = this;
    const client = await this.connectMongo();
    const collection = client.db(settings.seen.db).collection<SeenDocument>(settings.seen.collection);
    const store = new SeenStore(collection);
    this.ttlOutcome = await store.ensureTtlIndex(
      settings.seen.expireAfterSeconds,
      settings.seen.onTtlMismatch,
    );
    const ttlLog = {
      seen: store.namespace,
      ...this.ttlOutcome,
      expireAfterSeconds: settings.seen.expireAfterSeconds,
    };
    if (this.ttlOutcome.action === 'updated')
      this.logger.warn(ttlLog, 'changed the TTL of the seen collection');
    else this.logger.info(ttlLog, 'seen collection TTL index ready');

    let delivery: DeliveryStrategy<TSchema>;
    if (options.mode === 'transactional') {
      await assertTransactionsSupported(client, store);
      delivery = new TransactionalDelivery(options.handler, client, store, options.transactionOptions);
    } else {
      delivery = new IdempotentHandlerDelivery(options.handler);
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

    // Short internal retries: the dead-letter publisher has its own endless, logged, stop-aware retry.
    this.producer = kafka.producer({
      retry: { retries: 2, maxRetryTime: 5_000 },
      createPartitioner: Partitioners.DefaultPartitioner,
      ...options.deadLetter?.producerConfig,
    });
    await this.producer.connect();

    const processor = new RecordProcessor<TSchema>({
      store,
      delivery,
      deadLetters: new DeadLetterPublisher(
        this.producer,
        settings.deadLetterTopicFor,
        settings.outageBackoff,
        this.logger,
      ),
      metrics: this.metrics,
      logger: this.logger,
      settings,
    });

    const consumer = kafka.consumer({ ...options.consumerConfig, groupId: settings.groupId });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => {
      this.logger.error(
        { err: errorMessage(event.payload.error), restart: event.payload.restart },
        event.payload.restart
          ? 'kafka consumer crashed; kafkajs restarts it'
          : 'kafka consumer crashed and stopped',
      );
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [...settings.topics], fromBeginning: settings.fromBeginning });
    } catch (error) {
      throw new Error(
        `Could not subscribe to ${settings.topics.map(String).join(', ')}: ${errorMessage(error)}. ` +
          `Do the topics exist (the relay creates them with its first event)?`,
        { cause: error },
      );
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: settings.partitionsConcurrently,
      eachBatch: createEachBatchHandler({
        processor,
        logger: this.logger,
        signal: this.abort.signal,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
      }),
    });
    this.logger.info(
      {
        mode: settings.mode,
        topics: settings.topics.map(String),
        partitionsConcurrently: settings.partitionsConcurrently,
      },
      'change consumer started',
    );
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
   * Stops consuming: the record in hand is finished and committed (a retry wait or a dead-letter
   * publish that keeps failing is abandoned instead; that record is redelivered later), then the
   * consumer leaves the group and the consumer, the dead-letter producer and (if the helper opened it)
   * the MongoDB client are closed. A MongoClient passed in stays open. Safe to call more than once.
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
      return;
    }
    if (this.state === 'starting') {
      this.abort.abort();
      await this.startPromise?.catch(() => undefined);
    }
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    await this.shutdown();
    this.state = 'stopped';
    this.logger.info({}, 'change consumer stopped');
  }

  private async shutdown(): Promise<void> {
    this.abort.abort();
    // disconnect() stops the runner, waits for the batch in hand to return, then leaves the group.
    await this.consumer
      ?.disconnect()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, 'kafka consumer disconnect failed'),
      );
    await this.producer
      ?.disconnect()
      .catch((error: unknown) =>
        this.logger.warn({ err: errorMessage(error) }, 'dead-letter producer disconnect failed'),
      );
    if (this.ownsMongoClient) {
      await this.mongoClient
        ?.close()
        .catch((error: unknown) =>
          this.logger.warn({ err: errorMessage(error) }, 'MongoDB client close failed'),
        );
    }
    this.consumer = undefined;
    this.producer = undefined;
  }
}

/** Creates a ChangeConsumer (not started yet). Throws ChangeConsumerConfigError for invalid options. */
export function createChangeConsumer<TSchema extends Document = Document>(
  options: ChangeConsumerOptions<TSchema>,
): ChangeConsumer<TSchema> {
  return new ChangeConsumer<TSchema>(options);
}
