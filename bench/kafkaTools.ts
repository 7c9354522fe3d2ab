/**
 * kafkajs helpers for the bench: a quiet client, topic creation, and a consumer that hands every record
 * to a callback together with the time its fetch response was received (for latency).
 */
import { rm } from 'node:fs/promises';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { startKafka, type KafkaService } from '../scripts/services/kafka.js';
import { uniqueName, withTimeout } from './support.js';

/**
 * startKafka() in a fresh directory, retried when the storage format step fails: scripts/services/kafka.ts
 * makes a base64url cluster id, and one in 64 starts with "-", which kafka-storage's argument parser
 * takes for an option ("argument --cluster-id/-t: expected one argument").
 */
export async function startBenchKafka(dataDir: string, log: (line: string) => void): Promise<KafkaService> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKafka({ dataDir, detached: false, log });
    } catch (error) {
      if (attempt >= 3 || !/storage format failed/.test((error as Error).message)) throw error;
      log(`kafka: storage format failed (cluster id starting with "-"?); retrying in a clean directory`);
      await rm(dataDir, { recursive: true, force: true });
    }
  }
}

export function kafkaClient(brokers: string, clientId = 'relay-bench'): Kafka {
  return new Kafka({
    clientId,
    brokers: brokers.split(','),
    connectionTimeout: 5000,
    requestTimeout: 30000,
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

/** The relay creates missing topics with KAFKA_TOPIC_PARTITIONS (default 6); the bench matches that. */
export const RELAY_DEFAULT_PARTITIONS = 6;

export async function createTopic(
  kafka: Kafka,
  topic: string,
  numPartitions = RELAY_DEFAULT_PARTITIONS,
  config: Record<string, string> = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const configEntries = Object.entries(config).map(([name, value]) => ({ name, value }));
    await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

export interface ReceivedRecord {
  key: string;
  value: string;
  partition: number;
  /** Date.now() when the fetch response holding this record reached the consumer. */
  receivedAt: number;
  /** The record's timestamp, ms: CreateTime (the producer built the request) or LogAppendTime (the broker appended it), as the topic says. */
  timestamp: number;
}

export interface TopicReader {
  readonly consumer: Consumer;
  stop(): Promise<void>;
}

/**
 * Reads `topic` from the beginning with a fresh consumer group; resolves once the group is joined, so
 * nothing written afterwards is missed. `maxWaitTimeInMs` small: an idle fetch returns quickly and a new
 * record is seen within ~that time of being appended.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  onRecord: (r: ReceivedRecord) => void,
  maxWaitTimeInMs = 10,
): Promise<TopicReader> {
  const consumer = kafka.consumer({ groupId: uniqueName('bench-reader'), maxWaitTimeInMs, minBytes: 1 });
  let joined!: () => void;
  const joinedP = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    // No offset commits: the group is thrown away, and a commit after each batch would delay the next fetch.
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const receivedAt = Date.now();
      for (const m of batch.messages) {
        onRecord({
          key: m.key?.toString('utf8') ?? '',
          value: m.value?.toString('utf8') ?? '',
          partition: batch.partition,
          receivedAt,
          timestamp: Number(m.timestamp),
        });
      }
    },
  });
  await withTimeout(joinedP, 60_000, `consumer group join on ${topic}`);
  return { consumer, stop: () => consumer.disconnect() };
}
