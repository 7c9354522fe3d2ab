/**
 * The sink: the only place the relay produces to Kafka (an idempotent producer, acks=all, one request
 * in flight per broker).
 *
 * What it guarantees:
 * - `publish` resolves only once a produce response named the record's topic-partition without error
 *   (see produceRequests.ts for how each call is kept to one broker, so no response can be skipped).
 * - Only unacknowledged records are sent again, as the same per-partition batches, so a batch that was
 *   written but whose answer was lost is deduplicated by the broker (idempotence); nothing Kafka
 *   acknowledged is sent again. Records of one partition leave in publish order.
 * - Producer-state errors (out-of-order sequence, unknown producer id, fenced epoch) re-create the
 *   producer; refusals (authorization, invalid topic, unsupported version) reject every record with
 *   KafkaRefusedError (the relay exits 6); the ownership guard `mayProduce` is asked before every call
 *   and inside the partitioner, and a "no" rejects everything with ProduceNotAllowedError (exit 5).
 * - Everything else is retried with capped exponential backoff for as long as it takes (the caller's
 *   in-flight limit stops reading meanwhile); `isLive` turns false once records have waited longer
 *   than `progressTimeoutMs` without any being acknowledged, so the orchestrator restarts the relay.
 * - Records Kafka cannot take (too large) are replaced by a small dead-letter record, never dropped.
 * What it leaves to the caller: ordering across partitions, and the checkpoint.
 */
import type {
  Kafka,
  Message,
  Producer,
  ProducerBatch,
  ProducerConfig,
  Admin,
  RecordMetadata,
  CompressionTypes,
  TopicMessages,
} from 'kafkajs';
import type { Position } from '../pipeline/ackWindow.js';
import type { Logger } from 'pino';
import type { OutboundRecord } from '../pipeline/toRecord.js';
import { withTimeout } from '../util/async.js';
import { compressionType, type Compression } from './compression.js';
import { KafkaRefusedError, ProduceNotAllowedError, ShutdownError } from './errors.js';
import { classify, findInChain, rootMessage } from './kafkaErrors.js';
import {
  isolateTooLarge,
  pendingRecord,
  replaceWithDeadLetter,
  type PendingRecord,
  type PublishOutcome,
} from './pendingRecord.js';
import {
  RouteChangedError,
  acknowledgedPartitions,
  pinnedPartitioner,
  planCalls,
  topicPartition,
  type Route,
} from './produceRequests.js';
import { routeRecords, toTopicMessages } from './recordRouting.js';
import { TopicDirectory, type TopicConfigFor, type TopicCreation } from './topicDirectory.js';

export { ShutdownError } from './errors.js';

export type { PublishOutcome } from './pendingRecord.js';

export interface KafkaSinkOptions {
  maxMessageBytes: number;
  maxBatchBytes: number;
  maxBatchRecords: number;
  retryMaxMs: number;
  deadLetterTopic: string;
  createTopics: TopicCreation | null;
  /** Configs of the relay's topics (RELAY_KEY=document: compacted); see TopicDirectoryOptions.configFor. */
  topicConfig?: TopicConfigFor;
  logger: Logger;
  /** KAFKA_COMPRESSION (default none). */
  compression?: Compression;
  /** KAFKA_RECORD_TIMESTAMP: the change's own time (default) or the time of sending. */
  recordTimestamp?: 'event' | 'send';
  /** KAFKA_PROGRESS_TIMEOUT_MS: records waiting this long with none acknowledged make isLive false. */
  progressTimeoutMs?: number;
  /** Ownership guard, asked right before every produce request (false: this relay lost its lease). */
  mayProduce?: () => boolean;
  onPublishError?: (error: unknown) => void;
  onDeadLetter?: (reason: string) => void;
  onHealthChange?: (healthy: boolean) => void;
  onPartitionCountChange?: (topic: string, from: number, to: number) => void;
  onProducerReset?: (errorType: string) => void;
  /** Extra producer settings (exactly-once: the transactional id and timeout). */
  producerConfig?: Pick<ProducerConfig, 'transactionalId' | 'transactionTimeout'>;
}

const IDLE_PROBE_MS = 3000;
const DEFAULT_PROGRESS_TIMEOUT_MS = 300_000;

export class KafkaSink {
  protected producer: Producer;
  protected producerConnected = false;
  private readonly admin: Admin;
  protected readonly directory: TopicDirectory;
  private readonly routes = new WeakMap<Message, Route>();
  private readonly compression: CompressionTypes;
  private readonly mayProduce: () => boolean;
  protected queue: PendingRecord[] = [];
  /** Taken from the queue and not yet settled. */
  protected delivering = 0;
  protected wake: (() => void) | null = null;
  private cancelBackoff: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  protected stopping = false;
  protected abandoned = false;
  protected failed: Error | null = null;
  private healthy = false;
  private lastSuccess = 0;
  private waitingSince = 0;
  private idleProbe: NodeJS.Timeout | null = null;

  constructor(
    protected readonly kafka: Kafka,
    protected readonly options: KafkaSinkOptions,
  ) {
    this.mayProduce = options.mayProduce ?? (() => true);
    this.compression = compressionType(options.compression ?? 'none');
    this.admin = kafka.admin();
    this.directory = new TopicDirectory(this.admin, {
      create: options.createTopics,
      ...(options.topicConfig ? { configFor: options.topicConfig } : {}),
      logger: options.logger,
      ...(options.onPartitionCountChange ? { onPartitionCountChange: options.onPartitionCountChange } : {}),
    });
    this.producer = this.createProducer();
  }

  /** Readiness: the last produce request or probe reached Kafka. */
  get isHealthy(): boolean {
    return this.healthy;
  }

  /** Liveness: false once records waited longer than the progress timeout with none acknowledged. */
  get isLive(): boolean {
    return this.stalledForMs() < (this.options.progressTimeoutMs ?? DEFAULT_PROGRESS_TIMEOUT_MS);
  }

  /** How long records have been waiting without any acknowledgement (0 while nothing waits). */
  stalledForMs(now = Date.now()): number {
    if (this.queue.length + this.delivering === 0) return 0;
    return now - Math.max(this.lastSuccess, this.waitingSince);
  }

  async connect(): Promise<void> {
    try {
      await this.admin.connect();
      await this.producer.connect();
      this.producerConnected = true;
      await this.afterConnect();
    } catch (error) {
      if (error instanceof KafkaRefusedError) throw error;
      const { kind, type } = classify(error);
      if (kind === 'refused') {
        const operation = type === 'SASL_AUTHENTICATION_FAILED' ? 'connect' : 'init-producer';
        throw new KafkaRefusedError(type, operation, null, rootMessage(error));
      }
      throw error;
    }
    this.setHealthy(true);
    this.loop = this.run();
    // A quiet stream sends nothing, so readiness would never notice Kafka going away: ask the
    // cluster for its metadata whenever nothing was acknowledged for a while.
    this.idleProbe = setInterval(() => void this.probeWhenIdle(), IDLE_PROBE_MS);
    this.idleProbe.unref();
  }

  /** Subclasses finish their start here, before the delivery loop runs (exactly-once: transactions). */
  protected async afterConnect(): Promise<void> {}

  protected createProducer(): Producer {
    return this.kafka.producer({
      ...this.options.producerConfig,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: pinnedPartitioner(this.routes, {
        observe: (topic, partitions) => this.directory.observe(topic, partitions),
        mayProduce: () => this.mayProduce(),
      }),
      // Topics are looked up and created by the directory, never implicitly by a metadata request.
      allowAutoTopicCreation: false,
      // Each call goes to one broker, so kafkajs' own retries only repeat that broker's request with
      // the same sequence numbers; anything longer is the sink's backoff.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
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

  /**
   * Resolves once Kafka acknowledged the record, or its dead-letter record. `position`: where the
   * stream is after this record (exactly-once mode writes it with the record's transaction).
   */
  publish(record: OutboundRecord, position?: Position): Promise<PublishOutcome> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.stopping) return Promise.reject(new ShutdownError());
    return new Promise((resolve, reject) => {
      const pending = pendingRecord(record, resolve, reject);
      if (position) pending.position = position;
      if (record.size > this.options.maxMessageBytes) {
        replaceWithDeadLetter(
          pending,
          'too-large',
          `${record.size} bytes > KAFKA_MAX_MESSAGE_BYTES ${this.options.maxMessageBytes}`,
          this.options,
        );
      }
      if (this.queue.length + this.delivering === 0) this.waitingSince = Date.now();
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
      for (const p of this.queue.splice(0)) p.reject(this.failed ?? new ShutdownError());
      await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
      this.setHealthy(false);
    }
  }

  /**
   * Topics the relay will publish to: looked up, and created if missing and KAFKA_CREATE_TOPICS allows.
   * Called at start for the topics known up front (collection targets), so consumers can subscribe
   * before the first change.
   */
  async createMissingTopics(topics: readonly string[]): Promise<void> {
    await this.directory.ensure(topics);
  }

  protected async run(): Promise<void> {
    while (!this.abandoned && !this.failed) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      const batch = this.takeBatch();
      this.delivering = batch.length;
      try {
        await this.deliver(batch);
      } finally {
        this.delivering = 0;
      }
    }
  }

  protected takeBatch(): PendingRecord[] {
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

  /** Send `batch` until every record in it is acknowledged (or dead-lettered), or the sink gives up. */
  protected async deliver(batch: PendingRecord[]): Promise<void> {
    let remaining = batch;
    for (let attempt = 1; remaining.length > 0 && !this.abandoned && !this.failed && !this.interrupted();) {
      if (!this.mayProduce()) return this.failAll(new ProduceNotAllowedError(), remaining);
      const before = remaining.length;
      let backoff = false;
      try {
        ({ remaining, backoff } = await this.round(remaining));
      } catch (error) {
        // Looking topics up, creating them or connecting the producer failed: nothing was sent.
        if (this.endsDelivery(error, remaining, 'describe')) return;
        this.logFailure(error, remaining, attempt);
        backoff = true;
      }
      this.delivering = remaining.length;
      if (!backoff) continue;
      if (remaining.length < before) attempt = 1;
      await this.sleepUnlessAbandoned(this.backoffMs(attempt));
      attempt += 1;
    }
    if (remaining.length > 0 && !this.failed) this.queue.unshift(...remaining);
  }

  /** Exactly-once: the transaction must be recovered before anything more is sent. */
  protected interrupted(): boolean {
    return false;
  }

  /**
   * One round: every record routed to its partition, one call per leader, all calls at once. Returns
   * the records not acknowledged (in their original order) and whether to back off before the next.
   */
  private async round(pending: PendingRecord[]): Promise<{ remaining: PendingRecord[]; backoff: boolean }> {
    await this.directory.ensure(pending.map((p) => p.record.topic));
    if (!this.producerConnected) {
      await this.producer.connect();
      this.producerConnected = true;
    }
    const order = new Map(pending.map((p, i) => [p, i]));
    const { sendable, waiting } = routeRecords(pending, this.directory);
    const calls = planCalls(
      sendable,
      (p) => p.record.topic,
      (p) => p.route!,
      (p) => p.isolate !== 'none',
    );
    const results = await Promise.allSettled(calls.map((call) => this.send(call)));
    const notAcked: PendingRecord[] = [...waiting];
    let backoff = waiting.length > 0;
    let resetProducer: string | null = null;
    for (const [i, result] of results.entries()) {
      const call = calls[i]!;
      if (result.status === 'fulfilled') {
        notAcked.push(...this.settle(call, result.value));
        continue;
      }
      notAcked.push(...call);
      const error: unknown = result.reason;
      if (findInChain(error, RouteChangedError)) continue; // re-planned from fresher metadata, no wait
      if (this.endsDelivery(error, pending, 'produce', call)) return { remaining: [], backoff: false };
      const { kind, type } = classify(error);
      if (kind === 'too-large') {
        isolateTooLarge(call, error, this.options);
        continue;
      }
      if (kind === 'producer-state') resetProducer = type;
      for (const topic of new Set(call.map((p) => p.record.topic))) this.directory.markStale(topic);
      this.setHealthy(false);
      this.options.onPublishError?.(error);
      this.logFailure(error, call, 0);
      backoff = true;
    }
    if (resetProducer) await this.resetProducer(resetProducer);
    notAcked.sort((a, b) => order.get(a)! - order.get(b)!);
    return { remaining: notAcked.filter((p) => !p.settled), backoff };
  }

  protected send(call: PendingRecord[]): Promise<RecordMetadata[]> {
    return this.producer.sendBatch(this.batchOf(call));
  }

  protected batchOf(call: PendingRecord[]): ProducerBatch & { topicMessages: TopicMessages[] } {
    const eventTime = (this.options.recordTimestamp ?? 'event') === 'event';
    const topicMessages = toTopicMessages(call, this.routes, eventTime);
    return { topicMessages, acks: -1, compression: this.compression };
  }

  /** Resolve the records whose topic-partition the response acknowledged; return the others. */
  private settle(call: PendingRecord[], response: RecordMetadata[]): PendingRecord[] {
    const acked = acknowledgedPartitions(response);
    const missing: PendingRecord[] = [];
    for (const p of call) {
      if (acked.has(topicPartition(p.record.topic, p.route!.partition))) this.acknowledge(p);
      else missing.push(p);
    }
    if (missing.length > 0) {
      const partitions = [...new Set(missing.map((p) => `${p.record.topic}/${p.route!.partition}`))];
      this.options.logger.warn(
        { records: missing.length, partitions, response },
        "Kafka's produce response did not acknowledge every partition sent; re-sending only those records",
      );
      for (const p of missing) this.directory.markStale(p.record.topic);
    }
    return missing;
  }

  protected acknowledge(p: PendingRecord): void {
    p.settled = true;
    this.lastSuccess = Date.now();
    this.setHealthy(true);
    this.resolveRecord(p);
  }

  protected resolveRecord(p: PendingRecord): void {
    p.resolve(p.deadLettered ? 'dead-lettered' : 'published');
  }

  /**
   * An error that ends delivery: the ownership guard said no (everything rejected, exit 5), or Kafka
   * refused for good (everything rejected, exit 6).
   */
  private endsDelivery(
    error: unknown,
    pending: PendingRecord[],
    operation: 'describe' | 'produce',
    call?: PendingRecord[],
  ): boolean {
    if (findInChain(error, ProduceNotAllowedError)) {
      this.failAll(new ProduceNotAllowedError(), pending);
      return true;
    }
    if (error instanceof KafkaRefusedError) {
      this.failAll(error, pending);
      return true;
    }
    const { kind, type } = classify(error);
    if (kind !== 'refused') return false;
    const topic = call?.[0]?.record.topic ?? pending[0]?.record.topic ?? null;
    const op = type === 'CLUSTER_AUTHORIZATION_FAILED' ? 'init-producer' : operation;
    this.failAll(new KafkaRefusedError(type, op, topic, rootMessage(error)), pending);
    return true;
  }

  protected failAll(error: Error, pending: PendingRecord[]): void {
    if (!this.failed) {
      this.failed = error;
      this.options.logger.error({ err: error }, 'the sink stops: nothing more is sent to Kafka');
    }
    for (const p of [...pending, ...this.queue.splice(0)]) {
      if (p.settled) continue;
      p.settled = true;
      p.reject(error);
    }
    this.setHealthy(false);
  }

  /** The broker lost or fenced our producer id: a new producer (new id, sequences from 0). */
  protected async resetProducer(errorType: string): Promise<void> {
    this.options.logger.warn(
      { errorType },
      'the idempotent producer lost its state at the broker; re-creating it and re-sending the unacknowledged records',
    );
    this.options.onProducerReset?.(errorType);
    const old = this.producer;
    this.producer = this.createProducer();
    this.producerConnected = false;
    await old.disconnect().catch(() => undefined);
  }

  protected logFailure(error: unknown, records: PendingRecord[], attempt: number): void {
    const { kind, type } = classify(error);
    this.options.logger.warn(
      {
        err: error,
        errorType: type,
        kind,
        records: records.length,
        topics: [...new Set(records.map((p) => p.record.topic))],
        ...(attempt > 0 ? { attempt, retryInMs: this.backoffMs(attempt) } : {}),
      },
      'publishing to Kafka failed; retrying the unacknowledged records (reading is paused at the in-flight limit)',
    );
  }

  protected backoffMs(attempt: number): number {
    return Math.min(this.options.retryMaxMs, 100 * 2 ** Math.min(attempt - 1, 16));
  }

  protected setHealthy(healthy: boolean): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.options.onHealthChange?.(healthy);
  }

  /** Backoff that ends early when stop() gives up waiting. */
  protected sleepUnlessAbandoned(ms: number): Promise<void> {
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
