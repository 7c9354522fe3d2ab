import type { IHeaders, KafkaMessage, Message, Producer } from 'kafkajs';

import { DeadLetterHeader } from '../contract/record.js';
import { retryUntilSuccess, type BackoffPolicy } from './backoff.js';
import { errorMessage } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { DeadLetterReason } from './types.js';

export type DeadLetterTopicFor = (sourceTopic: string) => string;

export const defaultDeadLetterTopic: DeadLetterTopicFor = (sourceTopic) => `${sourceTopic}.dlq`;

/** Longest `dead-letter-error` header value, in characters; longer messages are cut. */
export const MAX_ERROR_HEADER_LENGTH = 4096;

export interface DeadLetterInfo {
  readonly reason: DeadLetterReason;
  /** The last error (message) that made the record a dead letter. */
  readonly error: string;
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

/**
 * The dead-letter record for `source`: the original key, value and headers, plus the
 * `dead-letter-*` headers (which replace any the original carried, e.g. when re-driving a DLQ).
 */
export function buildDeadLetterMessage(source: SourceRecord, info: DeadLetterInfo): Message {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(source.message.headers ?? {})) {
    if (value !== undefined) headers[name] = value;
  }
  headers[DeadLetterHeader.reason] = info.reason;
  headers[DeadLetterHeader.error] = truncate(info.error, MAX_ERROR_HEADER_LENGTH);
  headers[DeadLetterHeader.attempts] = String(info.attempts);
  headers[DeadLetterHeader.sourceTopic] = source.topic;
  headers[DeadLetterHeader.sourcePartition] = String(source.partition);
  headers[DeadLetterHeader.sourceOffset] = source.message.offset;
  return { key: source.message.key, value: source.message.value, headers };
}

/**
 * Publishes dead letters. A failed publish is retried (with backoff) until it succeeds or the consumer
 * stops: the partition waits rather than losing the record.
 */
export class DeadLetterPublisher {
  constructor(
    private readonly producer: Producer,
    private readonly topicFor: DeadLetterTopicFor,
    private readonly retryPolicy: BackoffPolicy,
    private readonly logger: ConsumerLogger,
  ) {}

  /** Resolves with the dead-letter topic once the broker acknowledged the record (acks=all). */
  async publish(source: SourceRecord, info: DeadLetterInfo, signal: AbortSignal): Promise<string> {
    const topic = this.topicFor(source.topic);
    const message = buildDeadLetterMessage(source, info);
    await retryUntilSuccess(
      () => this.producer.send({ topic, acks: -1, messages: [message] }),
      this.retryPolicy,
      signal,
      (error, failures, nextDelayMs) =>
        this.logger.error(
          {
            err: errorMessage(error),
            deadLetterTopic: topic,
            topic: source.topic,
            partition: source.partition,
            offset: source.message.offset,
            failures,
            nextDelayMs,
          },
          'publishing a dead letter failed; the partition waits and retries',
        ),
    );
    return topic;
  }
}
