/**
 * Kafka helpers for tests: unique topic names, clients bound to the run's broker, and a
 * collector that reads a topic from the beginning into an array.
 */
import { randomBytes } from 'node:crypto';
import {
  Kafka,
  logLevel,
  Partitioners,
  type Consumer,
  type IHeaders,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import { getServices } from './services.js';
import { waitFor } from './wait.js';

/** Topic names that never collide between tests or runs (the shared broker outlives a test). */
export function uniqueTopic(prefix = 'test'): string {
  const safe = prefix.replace(/[^a-zA-Z0-9._-]/g, '-').slice(0, 100);
  return `${safe}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * A kafkajs client for `brokers` (default: the run's shared broker). kafkajs logs retriable
 * errors (e.g. "coordinator is loading") at ERROR level, which is noise in test output, so it
 * is silent unless KAFKAJS_LOG_LEVEL=error|warn|info|debug.
 */
export function kafkaClient(clientId = 'test', brokers = getServices().brokers): Kafka {
  const wanted = (process.env.KAFKAJS_LOG_LEVEL ?? 'nothing').toUpperCase() as keyof typeof logLevel;
  return new Kafka({ clientId, brokers: brokers.split(','), logLevel: logLevel[wanted] ?? logLevel.NOTHING });
}

/** An idempotent producer (acks=all is kafkajs' default for send) with the current default partitioner. */
export function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

export async function createTopic(kafka: Kafka, topic: string, numPartitions = 1): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

export interface CollectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: string;
}

export interface Collector {
  readonly messages: CollectedMessage[];
  /** Resolves with the messages once at least `count` arrived; throws after `timeoutMs`. */
  waitForCount(count: number, timeoutMs?: number): Promise<CollectedMessage[]>;
  stop(): Promise<void>;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.map(String).join(',') : String(v);
  }
  return out;
}

/**
 * Consumes `topic` from the beginning with a fresh consumer group (so earlier tests' commits
 * never apply). Keys, values and headers are decoded as UTF-8. Call stop() when done.
 */
export async function collectTopic(
  topic: string,
  opts: { kafka?: Kafka; groupId?: string } = {},
): Promise<Collector> {
  const kafka = opts.kafka ?? kafkaClient('collector');
  const groupId = opts.groupId ?? uniqueTopic(`collector-${topic}`);
  const messages: CollectedMessage[] = [];
  // A record is kept once per (partition, offset): a restarted consumer may be handed some again.
  const seen = new Set<string>();
  let consumer: Consumer;
  let stopped = false;

  const start = async (): Promise<void> => {
    // Short fetch long-poll: kafkajs' disconnect() waits for the in-flight fetch (default 5 s).
    consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    // A loaded machine can make a group join fail for good (kafkajs then stops the consumer):
    // the collector must not go deaf silently, so it starts a new member of the same group.
    consumer.on(consumer.events.CRASH, (event) => {
      if (stopped || event.payload.restart) return;
      console.warn(`[collector ${topic}] consumer crashed (${event.payload.error.message}); restarting`);
      void consumer.disconnect().finally(() => setTimeout(() => void start(), 1000));
    });
    await consumer.connect();
    // The topic may not exist yet (the relay creates it on its first record): retry until it does.
    await waitFor(
      () =>
        consumer.subscribe({ topics: [topic], fromBeginning: true }).then(
          () => true,
          (error: unknown) => {
            if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return false;
            throw error;
          },
        ),
      { timeoutMs: 60_000, intervalMs: 250, message: `topic ${topic} to exist` },
    );
    await consumer.run({
      eachMessage: async ({ topic: t, partition, message }) => {
        const id = `${partition}:${message.offset}`;
        if (seen.has(id)) return;
        seen.add(id);
        messages.push({
          topic: t,
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          value: message.value?.toString('utf8') ?? null,
          headers: headersToStrings(message.headers),
          timestamp: message.timestamp,
        });
      },
    });
  };

  await start();
  return {
    messages,
    waitForCount: (count, timeoutMs = 30_000) =>
      waitFor(() => messages.length >= count && messages, {
        timeoutMs,
        intervalMs: 50,
        message: () => `${count} messages on ${topic} (got ${messages.length})`,
      }),
    stop: () => {
      stopped = true;
      return consumer.disconnect();
    },
  };
}

/** A collected record as kafkajs hands it to a consumer (for the consumer helper's decodeRecord). */
export function asKafkaMessage(
  m: CollectedMessage,
  headers: Record<string, string> = m.headers,
): KafkaMessage {
  return {
    key: m.key === null ? null : Buffer.from(m.key),
    value: m.value === null ? null : Buffer.from(m.value),
    headers,
    offset: m.offset,
    timestamp: m.timestamp,
    attributes: 0,
  };
}
