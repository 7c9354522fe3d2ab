/**
 * Materialized view: consumes the relay's topic(s) with the consumer helper and keeps, per source
 * document, its latest state in a view collection.
 *
 *   KAFKA_BROKERS=localhost:9092 MONGODB_URI=mongodb://localhost:27017 SOURCE_TOPIC=shop.orders \
 *   VIEW_DB=shop_views VIEW_COLL=orders tsx examples/materialized-view/index.ts
 *
 * Optional: GROUP_ID (default `materialized-view.<VIEW_DB>.<VIEW_COLL>`), CONSUMER_MODE
 * (`idempotent-handler`, default, or `transactional` on a replica set), PARTITIONS_CONCURRENTLY (default 4),
 * TOMBSTONE_TTL_SECONDS (default 1296000), LOG_LEVEL (default info).
 */
import { pathToFileURL } from 'node:url';

import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';

import {
  createChangeConsumer,
  type ChangeConsumer,
  type CommonConsumerOptions,
} from '../../src/consumer/index.js';
import { applyChangeToView, assertExactNumbers, ensureViewIndexes, type ViewDocument } from './view.js';

export {
  applyChangeToView,
  assertExactNumbers,
  compareChangePosition,
  inexactIntegerPath,
  ensureViewIndexes,
  olderThan,
  viewDocumentFor,
  type ApplyOutcome,
  type ChangePosition,
  type ViewDocument,
} from './view.js';

export interface MaterializedViewConfig {
  readonly brokers: string[];
  readonly mongoUri: string;
  readonly topics: string[];
  readonly viewDb: string;
  readonly viewColl: string;
  readonly groupId: string;
  readonly mode: 'idempotent-handler' | 'transactional';
  readonly partitionsConcurrently: number;
  readonly tombstoneTtlSeconds: number;
  readonly logLevel: string;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value)
    throw new Error(`Environment variable ${name} is required (see examples/materialized-view/README.md)`);
  return value;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): MaterializedViewConfig {
  const viewDb = required(env, 'VIEW_DB');
  const viewColl = required(env, 'VIEW_COLL');
  const mode = env.CONSUMER_MODE?.trim() || 'idempotent-handler';
  if (mode !== 'idempotent-handler' && mode !== 'transactional') {
    throw new Error(`CONSUMER_MODE must be idempotent-handler or transactional, got ${mode}`);
  }
  return {
    brokers: list(required(env, 'KAFKA_BROKERS')),
    mongoUri: required(env, 'MONGODB_URI'),
    topics: list(required(env, 'SOURCE_TOPIC')),
    viewDb,
    viewColl,
    groupId: env.GROUP_ID?.trim() || `materialized-view.${viewDb}.${viewColl}`,
    mode,
    partitionsConcurrently: Number(env.PARTITIONS_CONCURRENTLY ?? 4),
    tombstoneTtlSeconds: Number(env.TOMBSTONE_TTL_SECONDS ?? 1_296_000),
    logLevel: env.LOG_LEVEL?.trim() || 'info',
  };
}

export interface RunningView {
  readonly consumer: ChangeConsumer;
  /** Stops the consumer, then closes the MongoDB client. */
  stop(): Promise<void>;
}

/**
 * Creates `<topic>.dlq` for each source topic that has none, with as many partitions as the source topic
 * (the helper refuses to start without its dead-letter topics; an application owns them).
 */
export async function ensureDeadLetterTopics(kafka: Kafka, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => existing.has(topic) && !existing.has(`${topic}.dlq`));
    if (missing.length === 0) return;
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics: missing });
    await admin.createTopics({
      waitForLeaders: true,
      topics: metadata.map((topic) => ({
        topic: `${topic.name}.dlq`,
        numPartitions: topic.partitions.length,
      })),
    });
  } finally {
    await admin.disconnect();
  }
}

/** Starts maintaining the view; resolves once consuming has begun. */
export async function startMaterializedView(config: MaterializedViewConfig): Promise<RunningView> {
  const logger = pino({ name: 'materialized-view', level: config.logLevel });
  const client = new MongoClient(config.mongoUri);
  await client.connect();
  try {
    const view = client.db(config.viewDb).collection<ViewDocument>(config.viewColl);
    await ensureViewIndexes(view, config.tombstoneTtlSeconds);

    const kafka = new Kafka({
      brokers: config.brokers,
      clientId: 'materialized-view',
      logLevel: logLevel.WARN,
    });
    await ensureDeadLetterTopics(kafka, config.topics);
    const common: CommonConsumerOptions = {
      kafka,
      groupId: config.groupId,
      topics: config.topics,
      mongo: { client },
      // One seen collection per application, next to its view.
      seen: {
        db: config.viewDb,
        collection: `${config.viewColl}_seen`,
        expireAfterSeconds: config.tombstoneTtlSeconds,
      },
      partitionsConcurrently: config.partitionsConcurrently,
      logger,
    };
    const consumer =
      config.mode === 'transactional'
        ? createChangeConsumer({
            ...common,
            mode: 'transactional',
            handler: async (event, { session, record }) => {
              assertExactNumbers(event, record);
              await applyChangeToView(view, event, session);
            },
          })
        : createChangeConsumer({
            ...common,
            mode: 'idempotent-handler',
            handler: async (event, { changeId, record }) => {
              assertExactNumbers(event, record);
              const outcome = await applyChangeToView(view, event);
              if (outcome === 'stale') logger.debug({ changeId }, 'skipped a change older than the view');
            },
          });
    await consumer.start();
    logger.info(
      {
        topics: config.topics,
        view: `${config.viewDb}.${config.viewColl}`,
        mode: config.mode,
        groupId: config.groupId,
      },
      'materialized view running',
    );
    return {
      consumer,
      stop: async () => {
        await consumer.stop();
        await client.close();
      },
    };
  } catch (error) {
    await client.close();
    throw error;
  }
}

async function main(): Promise<void> {
  const running = await startMaterializedView(configFromEnv());
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`second ${signal}: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    const watchdog = setTimeout(() => {
      process.stderr.write('graceful stop took longer than 60 s: exiting\n');
      process.exit(1);
    }, 60_000);
    watchdog.unref();
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `materialized view failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
