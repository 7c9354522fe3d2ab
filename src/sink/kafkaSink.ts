/**
 * The sink: the only place the relay produces to Kafka. Records queue up while one produce request is
 * in flight, then go out together as the next request (an idempotent producer with acks=all and one
 * request in flight keeps every partition in order). A failed request is retried as a whole with
 * capped exponential backoff, for as long as it takes: the caller's in-flight limit stops reading
 * meanwhile, so memory stays bounded and the checkpoint stays put. Records Kafka cannot take (too
 * large) are replaced by a small dead-letter record, never dropped.
 */
import type { Kafka, Message, Producer, Admin, ICustomPartitioner } from 'kafkajs';
import type { Logger } from 'pino';
import { partitionFor } from '../pipeline/murmur2.js';
import { deadLetterFor, type OutboundRecord } from '../pipeline/toRecord.js';
import { withTimeout } from '../util/async.js';

export type PublishOutcome = 'published' | 'dead-lettered';

export interface KafkaSinkOptions {
  maxMessageBytes: number;
  maxBatchBytes: number;
  maxBatchRecords: number;
  retryMaxMs: number;
  deadLetterTopic: string;
  createTopics: { partitions: number; replicationFactor: number } | null;
  logger: Logger;
  onPublishError?: (error: unknown) => void;
  onDeadLetter?: (reason: string) => void;
  onHealthChange?: (healthy: boolean) => void;
}

export class ShutdownError extends Error {
  constructor() {
    super('the relay stopped before Kafka acknowledged this record');
    this.name = 'ShutdownError';
  }
}

interface Pending {
  record: OutboundRecord;
  deadLettered: boolean;
  resolve: (outcome: PublishOutcome) => void;
  reject: (error: Error) => void;
}

const IDLE_PROBE_MS = 3000;

// The partitioner sees the kafkajs message object we built; this map carries its partition key.
const partitionKeys = new WeakMap<Message, Buffer>();

const partitioner: ICustomPartitioner =
  () =>
  ({ partitionMetadata, message }) => {
    const key = partitionKeys.get(message) ?? (message.key ? Buffer.from(message.key) : Buffer.alloc(0));
    return partitionFor(key, partitionMetadata.length);
  };

export class KafkaSink {
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly knownTopics = new Set<string>();
  private queue: Pending[] = [];
  private wake: (() => void) | null = null;
  private cancelBackoff: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private abandoned = false;
  private healthy = false;
  private lastSuccess = 0;
  private idleProbe: NodeJS.Timeout | null = null;

  constructor(
    kafka: Kafka,
    private readonly options: KafkaSinkOptions,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: partitioner,
      allowAutoTopicCreation: options.createTopics !== null,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    this.admin = kafka.admin();
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    await this.admin.connect();
    this.setHealthy(true);
    this.loop = this.run();
    // A quiet stream sends nothing, so readiness would never notice Kafka going away: ask the
    // cluster for its metadata whenever nothing was acknowledged for a while.
    this.idleProbe = setInterval(() => void this.probeWhenIdle(), IDLE_PROBE_MS);
    this.idleProbe.unref();
  }

  private async probeWhenIdle(): Promise<void> {
    if (Date.now() - this.lastSuccess < IDLE_PROBE_MS || this.queue.length > 0 || this.stopping) return;
    try {
      await withTimeout(this.admin.describeCluster(), IDLE_PROBE_MS);
      this.setHealthy(true);
    } catch {
      this.setHealthy(false);
    }
  }

  /** Resolves once Kafka acknowledged the record, or its dead-letter record. */
  publish(record: OutboundRecord): Promise<PublishOutcome> {
    if (this.stopping) return Promise.reject(new ShutdownError());
    return new Promise((resolve, reject) => {
      const pending: Pending = { record, deadLettered: false, resolve, reject };
      if (record.size > this.options.maxMessageBytes) {
        this.replaceWithDeadLetter(
          pending,
          'too-large',
          `${record.size} bytes > KAFKA_MAX_MESSAGE_BYTES ${this.options.maxMessageBytes}`,
        );
      }
      this.queue.push(pending);
      this.wake?.();
    });
  }

  /**
   * Stop after everything queued is acknowledged, or at the deadline: then whatever is still unacknowledged
   * is rejected with ShutdownError (and stays after the checkpoint, so it is published after a restart).
   */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    if (this.idleProbe) clearInterval(this.idleProbe);
    this.wake?.();
    const timer = setTimeout(
      () => {
        this.abandoned = true;
        this.wake?.();
        this.cancelBackoff?.();
      },
      Math.max(0, deadline - Date.now()),
    );
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
      for (const p of this.queue.splice(0)) p.reject(new ShutdownError());
      await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
      this.setHealthy(false);
    }
  }

  private async run(): Promise<void> {
    while (!this.abandoned) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const batch = this.takeBatch();
      await this.deliver(batch);
    }
  }

  private takeBatch(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < this.options.maxBatchRecords) {
      const size = this.queue[n]!.record.size;
      if (n > 0 && bytes + size > this.options.maxBatchBytes) break;
      bytes += size;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async deliver(batch: Pending[]): Promise<void> {
    for (let attempt = 1; !this.abandoned; attempt++) {
      try {
        await this.ensureTopics(batch);
        await this.producer.sendBatch({ topicMessages: toTopicMessages(batch), acks: -1 });
        this.lastSuccess = Date.now();
        this.setHealthy(true);
        for (const p of batch) p.resolve(p.deadLettered ? 'dead-lettered' : 'published');
        return;
      } catch (error) {
        if (isTooLarge(error)) {
          await this.deliverTooLarge(batch, error);
          return;
        }
        this.setHealthy(false);
        this.options.onPublishError?.(error);
        const delay = Math.min(this.options.retryMaxMs, 100 * 2 ** Math.min(attempt - 1, 16));
        this.options.logger.warn(
          { err: error, records: batch.length, attempt, retryInMs: delay },
          'publishing to Kafka failed; retrying (reading is paused at the in-flight limit)',
        );
        await this.sleepUnlessAbandoned(delay);
      }
    }
    this.queue.unshift(...batch);
  }

  /** Kafka refused a request as too large: send one by one, and dead-letter a single refused record. */
  private async deliverTooLarge(batch: Pending[], error: unknown): Promise<void> {
    if (batch.length > 1) {
      for (const p of batch) await this.deliver([p]);
      return;
    }
    const only = batch[0]!;
    if (only.deadLettered) {
      only.reject(
        new Error(
          `even the dead-letter record for ${only.record.key} is too large for Kafka: ${(error as Error).message}`,
        ),
      );
      return;
    }
    this.replaceWithDeadLetter(only, 'too-large', (error as Error).message);
    await this.deliver([only]);
  }

  private replaceWithDeadLetter(p: Pending, reason: string, detail: string): void {
    this.options.logger.error(
      {
        changeId: p.record.key,
        ns: p.record.ns,
        size: p.record.size,
        reason,
        deadLetterTopic: this.options.deadLetterTopic,
      },
      'event cannot be published to Kafka; a dead-letter record names it',
    );
    p.record = deadLetterFor(p.record, reason, detail, this.options.deadLetterTopic);
    p.deadLettered = true;
    this.options.onDeadLetter?.(reason);
  }

  private ensureTopics(batch: Pending[]): Promise<void> {
    return this.createMissingTopics(batch.map((p) => p.record.topic));
  }

  /**
   * Create topics the relay will publish to, if KAFKA_CREATE_TOPICS allows. Called at start for the
   * topics known up front (collection targets), so consumers can subscribe before the first change.
   */
  async createMissingTopics(topics: readonly string[]): Promise<void> {
    const create = this.options.createTopics;
    if (!create) return;
    const missing = [...new Set(topics)].filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    await this.admin.createTopics({
      topics: missing.map((topic) => ({
        topic,
        numPartitions: create.partitions,
        replicationFactor: create.replicationFactor,
      })),
      waitForLeaders: true,
    });
    for (const t of missing) this.knownTopics.add(t);
  }

  private setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.options.onHealthChange?.(healthy);
  }

  /** Backoff that ends early when stop() gives up waiting. */
  private sleepUnlessAbandoned(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.cancelBackoff = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cancelBackoff = done;
    });
  }
}

function toTopicMessages(batch: Pending[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>();
  for (const { record } of batch) {
    const message: Message = { key: record.key, value: record.value, headers: record.headers };
    partitionKeys.set(message, record.partitionKey);
    const list = byTopic.get(record.topic);
    if (list) list.push(message);
    else byTopic.set(record.topic, [message]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

interface KafkaErrorShape {
  type?: string;
  cause?: unknown;
  errors?: unknown[];
}

/** kafkajs reports the broker's size refusal as a protocol error, possibly wrapped (retries, aggregates). */
function isTooLarge(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 3) return false;
  const e = error as KafkaErrorShape;
  if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE') return true;
  return isTooLarge(e.cause, depth + 1) || (e.errors ?? []).some((inner) => isTooLarge(inner, depth + 1));
}
