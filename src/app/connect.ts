/**
 * Connecting to the two systems the relay depends on, at start. MongoDB must answer at once (the relay
 * cannot know where to resume without it: a clear exit). Kafka may be down when the relay starts: it
 * keeps trying with capped backoff while readiness stays 503, and ends only on a refusal that retrying
 * cannot fix (credentials, ACLs: exit 6).
 */
import { MongoServerSelectionError, type MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { redactUri } from '../config/redact.js';
import type { RelayConfig } from '../config/settings.js';
import type { RelayMetrics } from '../metrics/relayMetrics.js';
import { TopicRouter } from '../pipeline/topicRouter.js';
import { KafkaRefusedError } from '../sink/errors.js';
import { installFastProduceEncoder } from '../sink/fastProduceEncoder.js';
import { createKafka } from '../sink/kafkaClient.js';
import { KafkaSink, type KafkaSinkOptions } from '../sink/kafkaSink.js';
import { stateTopicConfig, type TopicConfigFor } from '../sink/topicDirectory.js';
import { TransactionalKafkaSink, type ExactlyOnceOptions } from '../sink/transactionalSink.js';
import { ProducerFencedError } from '../sink/errors.js';
import { RelayExit } from './errors.js';
import { ExitCode } from './exitCodes.js';

export async function connectMongo(client: MongoClient, uri: string): Promise<void> {
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (error) {
    const hint =
      error instanceof MongoServerSelectionError
        ? 'check that the host is reachable and the connection string is right'
        : 'check the connection string and credentials';
    throw new RelayExit(
      `cannot connect to MongoDB at ${redactUri(uri)}: ${(error as Error).message}; ${hint}`,
      ExitCode.failure,
    );
  }
}

export interface SinkStartup {
  config: RelayConfig;
  logger: Logger;
  metrics: RelayMetrics;
  /** The lease's guard, asked before every produce request. */
  mayProduce: () => boolean;
  /** The lease owner: names this relay's transactions (exactly-once). */
  owner: string;
  /** False once the relay stops or failed: give up (resolves null). */
  keepTrying: () => boolean;
  /** Waits `ms` between attempts, less if the relay is asked to stop. */
  pause: (ms: number) => Promise<void>;
}

/** A connected sink, with the topics of the watch targets looked up (and created if allowed). */
export async function connectSinkWhenKafkaAnswers(startup: SinkStartup): Promise<KafkaSink | null> {
  const { config, logger } = startup;
  const fastProduceEncoder = installFastProduceEncoder();
  for (let attempt = 1; startup.keepTrying(); attempt++) {
    const kafka = createKafka(config, logger);
    const sink =
      config.relay.delivery === 'exactly-once'
        ? new TransactionalKafkaSink(kafka, sinkOptions(startup), exactlyOnceOptions(startup), {
            onSplit: (reason) => startup.metrics.mongodbTransactionsSplit.inc({ reason }),
            onCommit: (records, ms) => {
              startup.metrics.kafkaTransactionRecords.observe(records);
              startup.metrics.kafkaTransactionCommit.observe(ms / 1000);
            },
          })
        : new KafkaSink(kafka, sinkOptions(startup));
    try {
      await sink.connect();
      // Best effort: a failure here is retried on the first publish to the topic.
      await sink.createMissingTopics(knownTopics(config)).catch((error: unknown) => {
        if (error instanceof KafkaRefusedError) throw error;
        logger.warn(
          { err: error },
          'could not create the topics of the watch targets yet; will retry on publish',
        );
      });
      logger.info({ brokers: config.derived.brokers, fastProduceEncoder }, 'kafka connected');
      return sink;
    } catch (error) {
      await sink.stop(Date.now()).catch(() => undefined); // half-connected clients must not leak
      if (error instanceof KafkaRefusedError) throw new RelayExit(error.message, ExitCode.kafkaRefused);
      if (error instanceof ProducerFencedError) throw new RelayExit(error.message, ExitCode.fenced);
      const delay = Math.min(config.kafka.retryMaxMs, 500 * 2 ** Math.min(attempt - 1, 10));
      logger.warn(
        { err: error, retryInMs: delay, brokers: config.derived.brokers },
        'cannot connect to Kafka; retrying',
      );
      await startup.pause(delay);
    }
  }
  return null;
}

function sinkOptions({ config, logger, metrics, mayProduce }: SinkStartup): KafkaSinkOptions {
  return {
    maxMessageBytes: config.kafka.maxMessageBytes,
    maxBatchBytes: config.kafka.maxBatchBytes,
    maxBatchRecords: config.checkpoint.mode === 'serial' ? 1 : 1000,
    retryMaxMs: config.kafka.retryMaxMs,
    compression: config.kafka.compression,
    recordTimestamp: config.kafka.recordTimestamp,
    progressTimeoutMs: config.kafka.progressTimeoutMs,
    mayProduce,
    onPartitionCountChange: (topic) => metrics.partitionCountChanges.inc({ topic }),
    onProducerReset: (error) => metrics.producerResets.inc({ error }),
    deadLetterTopic: config.kafka.deadLetterTopic,
    createTopics: config.kafka.createTopics
      ? { partitions: config.kafka.topicPartitions, replicationFactor: config.kafka.replicationFactor }
      : null,
    ...topicConfig(config),
    logger,
    onPublishError: () => metrics.publishErrors.inc(),
    onDeadLetter: (reason) => metrics.deadLetters.inc({ reason }),
  };
}

/**
 * Configs of the topics the relay creates: state topics (RELAY_KEY=document) are compacted, and so is
 * the positions topic (exactly-once), which keeps each checkpoint's latest position.
 */
function topicConfig(config: RelayConfig): { topicConfig?: TopicConfigFor } {
  const state = config.relay.key === 'document' ? stateTopicConfig(config.kafka.deadLetterTopic) : null;
  if (config.relay.delivery !== 'exactly-once') return state ? { topicConfig: state } : {};
  const positions: Record<string, string> = { 'cleanup.policy': 'compact', 'segment.ms': '3600000' };
  const none: Record<string, string> = {};
  const positionsTopic = config.kafka.positionsTopic;
  return { topicConfig: (topic) => (topic === positionsTopic ? positions : (state?.(topic) ?? none)) };
}

function exactlyOnceOptions({ config, owner }: SinkStartup): ExactlyOnceOptions {
  return {
    transactionalId: config.derived.transactionalId,
    positionsTopic: config.kafka.positionsTopic,
    checkpointId: config.derived.checkpointId,
    owner,
    maxTransactionMs: config.relay.transactionMaxMs,
    maxTransactionRecords: Math.max(1, Math.floor(config.relay.maxInFlight / 2)),
    maxTransactionBytes: Math.max(1, Math.floor(config.relay.maxInFlightBytes / 2)),
    transactionTimeoutMs: config.kafka.transactionTimeoutMs,
    idlePositionMs: config.checkpoint.heartbeatMs,
    readTimeoutMs: 60_000,
  };
}

/** The topics of collection targets: known before any change arrives. */
function knownTopics(config: RelayConfig): string[] {
  const router = new TopicRouter(config.kafka.topic, config.derived.scope);
  return config.derived.targets.flatMap((t) =>
    t.kind === 'collection' ? [router.topicFor({ db: t.db, coll: t.coll })] : [],
  );
}
