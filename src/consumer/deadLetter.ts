/**
 * Dead letters: the original record (key, value, headers) plus `dead-letter-*` headers, published to the
 * dead-letter topic of its source topic.
 *
 * Invariant: all dead letters of one source partition go to one dead-letter partition (source partition
 * modulo the dead-letter topic's partition count), so the dead letters of one document keep their order.
 * Publishing is one attempt (plus the producer's short retries); the caller decides how to wait.
 */
import type { Admin, IHeaders, KafkaMessage, Message, Producer } from 'kafkajs';

import { DeadLetterHeader as ContractDeadLetterHeader } from '../contract/record.js';
import { DeadLetterTopicMissingError } from './errors.js';
import type { DeadLetterReason } from './types.js';

/** Headers of a dead-letter record, in addition to the original record's headers. */
export const DeadLetterHeader = {
  ...ContractDeadLetterHeader,
  /** The consumer group whose handler gave up on the record. */
  groupId: 'dead-letter-group-id',
  /** The class name of the last error (`PermanentHandlerError`, `HandlerTimeoutError`, `Error`, ...). */
  errorName: 'dead-letter-error-name',
} as const;

export type DeadLetterTopicFor = (sourceTopic: string) => string;

export const defaultDeadLetterTopic: DeadLetterTopicFor = (sourceTopic) => `${sourceTopic}.dlq`;

/** Longest `dead-letter-error` header value, in characters; longer messages are cut. */
export const MAX_ERROR_HEADER_LENGTH = 4096;

export interface DeadLetterInfo {
  readonly reason: DeadLetterReason;
  /** The last error (message) that made the record a dead letter. */
  readonly error: string;
  /** Its class name. */
  readonly errorName: string;
  /** How many times the handler was called (0 when the record never reached it). */
  readonly attempts: number;
}

export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The partition of a dead letter: that of its source partition, folded onto the dead-letter topic. */
export function deadLetterPartition(sourcePartition: number, deadLetterPartitions: number): number {
  return sourcePartition % Math.max(1, deadLetterPartitions);
}

/**
 * The dead-letter record for `source`: the original key, value and headers, plus the `dead-letter-*`
 * headers (which replace any the original carried, e.g. when a dead letter failed again after a re-drive).
 */
export function buildDeadLetterMessage(
  source: SourceRecord,
  info: DeadLetterInfo,
  groupId: string,
  partition: number,
): Message {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(source.message.headers ?? {})) {
    if (value !== undefined) headers[name] = value;
  }
  headers[DeadLetterHeader.reason] = info.reason;
  headers[DeadLetterHeader.error] = truncate(info.error, MAX_ERROR_HEADER_LENGTH);
  headers[DeadLetterHeader.errorName] = info.errorName;
  headers[DeadLetterHeader.attempts] = String(info.attempts);
  headers[DeadLetterHeader.groupId] = groupId;
  headers[DeadLetterHeader.sourceTopic] = source.topic;
  headers[DeadLetterHeader.sourcePartition] = String(source.partition);
  headers[DeadLetterHeader.sourceOffset] = source.message.offset;
  return { key: source.message.key, value: source.message.value, headers, partition };
}

/** Where a dead letter went. */
export interface DeadLetterReceipt {
  readonly topic: string;
  readonly partition: number;
}

/** Publishes dead letters with `acks=all`, knowing each dead-letter topic's partition count. */
export class DeadLetterPublisher {
  private readonly partitions = new Map<string, number>();

  constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
    private readonly topicFor: DeadLetterTopicFor,
    private readonly groupId: string,
  ) {}

  /**
   * Checks that the dead-letter topic of each of `sourceTopics` exists (and learns its partition count).
   * Throws DeadLetterTopicMissingError naming every missing one. Never creates a topic.
   */
  async checkTopics(sourceTopics: readonly string[]): Promise<void> {
    const wanted = new Map(sourceTopics.map((topic) => [topic, this.topicFor(topic)]));
    const existing = new Set(await this.admin.listTopics());
    const missing = [...wanted]
      .filter(([, deadLetterTopic]) => !existing.has(deadLetterTopic))
      .map(([topic, deadLetterTopic]) => ({ topic, deadLetterTopic }));
    if (missing.length > 0) throw new DeadLetterTopicMissingError(missing);
    await this.learnPartitions([...new Set(wanted.values())]);
  }

  private async learnPartitions(topics: string[]): Promise<void> {
    if (topics.length === 0) return;
    const { topics: metadata } = await this.admin.fetchTopicMetadata({ topics });
    for (const topic of metadata) this.partitions.set(topic.name, topic.partitions.length);
  }

  /** Resolves once the broker acknowledged the dead letter; rejects when it did not (the caller waits and retries). */
  async publish(source: SourceRecord, info: DeadLetterInfo): Promise<DeadLetterReceipt> {
    const topic = this.topicFor(source.topic);
    if (!this.partitions.has(topic)) {
      // A topic subscribed after start (a RegExp subscription): refuse the same way start() would.
      await this.checkTopics([source.topic]);
    }
    const partition = deadLetterPartition(source.partition, this.partitions.get(topic) ?? 1);
    const message = buildDeadLetterMessage(source, info, this.groupId, partition);
    await this.producer.send({ topic, acks: -1, messages: [message] });
    return { topic, partition };
  }
}
