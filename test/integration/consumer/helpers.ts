/**
 * Shared set-up for the consumer helper's integration tests: real Kafka and MongoDB from the run's
 * services, relay-shaped records, capability probes, and consumers that are always stopped.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';

import type { Kafka, Message, Producer } from 'kafkajs';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { Registry } from 'prom-client';

import {
  createChangeConsumer,
  type ChangeConsumer,
  type ChangeConsumerOptions,
  type CommonConsumerOptions,
  type ConsumerLogger,
} from '../../../src/consumer/index.js';
import { collectTopic, createTopic, kafkaClient, uniqueTopic } from '../../support/kafka.js';
import { getServices } from '../../support/services.js';
import { waitFor } from '../../support/wait.js';

export { collectTopic, createTopic, uniqueTopic, waitFor };

/** Waits `ms`; with a signal, rejects with the signal's reason as soon as it is aborted (a handler that honours it). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const TEST_DB = 'consumer_it';

/** The run's services: the root hook exports them as KAFKA_BROKERS / MONGODB_URI (also to child processes). */
export function services(): { brokers: string; mongoUri: string } {
  const brokers = process.env.KAFKA_BROKERS ?? getServices().brokers;
  const mongoUri = process.env.MONGODB_URI ?? getServices().mongoUri;
  return { brokers, mongoUri };
}

/** A pino logger writing JSON lines into `lines` (parsed), for assertions on what was logged. */
export function captureLogger(level = 'debug'): {
  logger: ConsumerLogger;
  lines: Array<Record<string, unknown>>;
  raw: string[];
} {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level }, stream), lines, raw };
}

/** Per-file handles: one Kafka client, one producer, one MongoClient; consumers stopped after each test. */
export class ConsumerTestKit {
  private kafkaInstance: Kafka | undefined;
  private producer: Producer | undefined;
  private mongo: MongoClient | undefined;
  private readonly consumers: ChangeConsumer[] = [];

  async setUp(): Promise<void> {
    this.kafkaInstance = kafkaClient('consumer-it', services().brokers);
    this.producer = this.kafka.producer();
    await this.producer.connect();
    this.mongo = new MongoClient(services().mongoUri);
    await this.mongo.connect();
  }

  get kafka(): Kafka {
    if (!this.kafkaInstance) throw new Error('ConsumerTestKit.setUp() was not called');
    return this.kafkaInstance;
  }

  get client(): MongoClient {
    if (!this.mongo) throw new Error('ConsumerTestKit.setUp() was not called');
    return this.mongo;
  }

  get db(): Db {
    return this.client.db(TEST_DB);
  }

  /** A fresh topic with `partitions` partitions and its dead-letter topic. */
  async topic(prefix: string, partitions = 1): Promise<string> {
    const topic = uniqueTopic(`consumer-${prefix}`);
    await createTopic(this.kafka, topic, partitions);
    await createTopic(this.kafka, `${topic}.dlq`, 1);
    return topic;
  }

  /** A fresh topic with topic-level configs (e.g. retention.ms), without a dead-letter topic. */
  async topicWithConfig(
    prefix: string,
    partitions: number,
    configEntries: Array<{ name: string; value: string }>,
  ): Promise<string> {
    const topic = uniqueTopic(`consumer-${prefix}`);
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, configEntries }],
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
    return topic;
  }

  async produce(topic: string, messages: Message[]): Promise<void> {
    if (!this.producer) throw new Error('ConsumerTestKit.setUp() was not called');
    await this.producer.send({ topic, acks: -1, messages });
  }

  /**
   * Options every test consumer shares: the run's broker, a unique group and seen collection, fast
   * retries, a registry of its own, a silent logger. Tests override what they exercise.
   */
  baseOptions(topic: string): CommonConsumerOptions & { registry: Registry } {
    return {
      kafka: this.kafka,
      groupId: `group-${topic}`,
      topics: [topic],
      consumerConfig: { maxWaitTimeInMs: 200, sessionTimeout: 10_000, heartbeatInterval: 1_000 },
      mongo: { client: this.client },
      seen: { db: TEST_DB, collection: `seen_${topic.replace(/[^a-zA-Z0-9]/g, '_')}` },
      retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 100 },
      outageRetry: { initialDelayMs: 50, maxDelayMs: 500 },
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
    };
  }

  /** Creates and starts a consumer that is stopped after the test. */
  async start(options: ChangeConsumerOptions): Promise<ChangeConsumer> {
    const consumer = createChangeConsumer(options);
    this.consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  async stopConsumers(): Promise<void> {
    await Promise.all(this.consumers.splice(0).map((consumer) => consumer.stop()));
  }

  async tearDown(): Promise<void> {
    await this.stopConsumers();
    await this.producer?.disconnect();
    await this.mongo?.close();
  }

  /** Committed offsets of `groupId` on `topic`, by partition ('-1' when none). */
  async committedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return new Map((entry?.partitions ?? []).map((p) => [p.partition, p.offset]));
    } finally {
      await admin.disconnect();
    }
  }
}

/** The value of a counter/histogram-count sample on `registry` matching `labels` (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const matching = values.filter((sample) =>
    Object.entries(labels).every(([key, value]) => String(sample.labels[key]) === value),
  );
  return matching.reduce((sum, sample) => sum + sample.value, 0);
}

export interface Capability {
  readonly available: boolean;
  readonly reason: string;
}

/** Can this MongoDB run a multi-document transaction? Asks the server (a real transaction on a scratch collection). */
export async function probeTransactions(client: MongoClient): Promise<Capability> {
  const scratch = client.db(TEST_DB).collection(`txn_probe_${randomBytes(4).toString('hex')}`);
  await scratch.insertOne({ _id: 'created' as never });
  const session = client.startSession();
  try {
    await session.withTransaction(async (s) => {
      await scratch.insertOne({ _id: 'in-transaction' as never }, { session: s });
    });
    return { available: true, reason: 'a transaction committed' };
  } catch (error) {
    return { available: false, reason: `a transaction failed: ${(error as Error).message}` };
  } finally {
    await session.endSession();
    await scratch.drop().catch(() => undefined);
  }
}

/** Can this MongoDB change a TTL index's expireAfterSeconds with collMod? Asks the server. */
export async function probeCollModTtl(client: MongoClient): Promise<Capability> {
  const name = `collmod_probe_${randomBytes(4).toString('hex')}`;
  const db = client.db(TEST_DB);
  const scratch = db.collection(name);
  try {
    await scratch.createIndex({ at: 1 }, { name: 'at_ttl', expireAfterSeconds: 100 });
    try {
      await db.command({ collMod: name, index: { name: 'at_ttl', expireAfterSeconds: 200 } });
    } catch (error) {
      return { available: false, reason: `collMod failed: ${(error as Error).message}` };
    }
    const index = (await scratch.listIndexes().toArray()).find((i) => i.name === 'at_ttl');
    return index?.expireAfterSeconds === 200
      ? { available: true, reason: 'collMod changed expireAfterSeconds' }
      : { available: false, reason: 'collMod returned ok but did not change expireAfterSeconds' };
  } finally {
    await scratch.drop().catch(() => undefined);
  }
}

/**
 * MongoDB's `transactionLifetimeLimitSeconds` (default 60), or undefined where the server has no such
 * parameter (the stand-in). A transaction left open by a SIGKILLed process holds its writes (e.g. a seen
 * mark) until the server aborts it: at most this long plus the period of the job that reaps expired
 * transactions (half the limit, at least 1 s, at most 60 s), so a test waiting behind it needs
 * `openTransactionReapedWithinMs()` on top of its own time.
 */
export async function transactionLifetimeSeconds(client: MongoClient): Promise<number | undefined> {
  try {
    const reply = await client.db('admin').command({ getParameter: 1, transactionLifetimeLimitSeconds: 1 });
    const value = Number(reply.transactionLifetimeLimitSeconds);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Longest time (ms) until MongoDB aborts a transaction abandoned by a killed process (see above). */
export function openTransactionReapedWithinMs(lifetimeSeconds: number): number {
  const reaperPeriodSeconds = Math.min(60, Math.max(1, lifetimeSeconds / 2));
  return (lifetimeSeconds + reaperPeriodSeconds) * 1_000;
}

/** Skips the running test (after saying why) unless `capability` is available. */
export function skipUnless(ctx: Mocha.Context, capability: Capability, what: string): void {
  if (capability.available) return;
  console.log(`      skipped: the MongoDB of this run lacks ${what} (${capability.reason})`);
  ctx.skip();
}
