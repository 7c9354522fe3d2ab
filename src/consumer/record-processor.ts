import type { KafkaMessage } from 'kafkajs';
import type { Document } from 'mongodb';

import { backoffDelay, retryUntilSuccess, sleep, type BackoffPolicy } from './backoff.js';
import type { DeadLetterInfo, DeadLetterPublisher } from './dead-letter.js';
import { decodeRecord } from './decode.js';
import type { DeliveryStrategy } from './delivery.js';
import { ConsumerStoppedError, PermanentHandlerError, errorMessage } from './errors.js';
import type { ConsumerLogger } from './logging.js';
import type { ConsumerMetrics } from './metrics.js';
import type { SeenStore } from './seen-store.js';
import type { HandlerContext, RecordMetadata, RecordOutcome } from './types.js';

export interface RecordProcessorSettings {
  readonly attempts: number;
  readonly handlerBackoff: BackoffPolicy;
  readonly outageBackoff: BackoffPolicy;
  readonly relaxedEjson: boolean;
}

export interface RecordProcessorDeps<TSchema extends Document> {
  readonly store: SeenStore;
  readonly delivery: DeliveryStrategy<TSchema>;
  readonly deadLetters: DeadLetterPublisher;
  readonly metrics: ConsumerMetrics;
  readonly logger: ConsumerLogger;
  readonly settings: RecordProcessorSettings;
}

/** What the partition runner lends the processor for one record. */
export interface RecordScope {
  /** Aborted by `stop()`: waits end, the record in hand is left uncommitted. */
  readonly signal: AbortSignal;
  heartbeat(): Promise<void>;
}

/**
 * Takes one record from "fetched" to "may be committed": decode, dedupe, handle with retries,
 * dead-letter, seen mark. Resolves with what happened; rejects with ConsumerStoppedError when a stop
 * interrupted it (the record must then not be committed). Infrastructure failures (MongoDB, the
 * dead-letter publish) make it wait and retry; they never skip the record.
 */
export class RecordProcessor<TSchema extends Document> {
  constructor(private readonly deps: RecordProcessorDeps<TSchema>) {}

  async process(
    topic: string,
    partition: number,
    message: KafkaMessage,
    scope: RecordScope,
  ): Promise<RecordOutcome> {
    const { store, metrics, settings } = this.deps;
    const decoded = decodeRecord<TSchema>(topic, partition, message, { relaxed: settings.relaxedEjson });

    if (!decoded.ok) {
      const { changeId } = decoded;
      if (
        changeId !== null &&
        (await this.outage('read the seen mark', () => store.isSeen(changeId), scope))
      ) {
        metrics.duplicates.inc({ topic });
        return 'duplicate';
      }
      await this.deadLetter(
        decoded.record,
        { reason: decoded.reason, error: decoded.error, attempts: 0 },
        scope,
      );
      if (changeId !== null) await this.markSeen(changeId, decoded.record, scope);
      return 'dead-lettered';
    }

    const { changeId, event, record } = decoded;
    if (await this.outage('read the seen mark', () => store.isSeen(changeId), scope)) {
      metrics.duplicates.inc({ topic });
      return 'duplicate';
    }

    let lastError: unknown;
    let attempts = 0;
    while (attempts < settings.attempts) {
      if (attempts > 0) {
        const delay = backoffDelay(settings.handlerBackoff, attempts);
        metrics.handlerRetries.inc({ topic });
        await sleep(delay, scope.signal);
      }
      attempts++;
      const context: HandlerContext = {
        changeId,
        record,
        attempt: attempts,
        signal: scope.signal,
        heartbeat: scope.heartbeat,
      };
      const endTimer = metrics.handlerDuration.startTimer({ topic });
      try {
        const result = await this.deps.delivery.deliver({ event, context, record });
        if (result === 'duplicate') {
          endTimer({ outcome: 'duplicate' });
          metrics.duplicates.inc({ topic });
          return 'duplicate';
        }
        endTimer({ outcome: 'success' });
      } catch (error) {
        endTimer({ outcome: 'error' });
        lastError = error;
        // A handler that failed because stop() aborted it is not a poison record: leave it for redelivery.
        if (scope.signal.aborted) throw new ConsumerStoppedError();
        const permanent = error instanceof PermanentHandlerError;
        this.deps.logger.warn(
          {
            err: errorMessage(error),
            changeId,
            topic,
            partition,
            offset: message.offset,
            attempt: attempts,
            attempts: settings.attempts,
            permanent,
          },
          'change handler failed',
        );
        if (permanent) break;
        continue;
      }
      if (!this.deps.delivery.writesSeenMark) await this.markSeen(changeId, record, scope);
      metrics.handled.inc({ topic });
      return 'handled';
    }

    await this.deadLetter(
      record,
      { reason: 'handler-failed', error: errorMessage(lastError), attempts },
      scope,
    );
    await this.markSeen(changeId, record, scope);
    return 'dead-lettered';
  }

  private async markSeen(changeId: string, record: RecordMetadata, scope: RecordScope): Promise<void> {
    // 'already-seen' is fine here: another delivery of the same change finished first.
    await this.outage('write the seen mark', () => this.deps.store.markSeen(changeId, record), scope);
  }

  private async deadLetter(record: RecordMetadata, info: DeadLetterInfo, scope: RecordScope): Promise<void> {
    const source = { topic: record.topic, partition: record.partition, message: record.message };
    const deadLetterTopic = await this.deps.deadLetters.publish(source, info, scope.signal);
    this.deps.metrics.recordDeadLetter(record.topic, info.reason);
    this.deps.logger.error(
      {
        reason: info.reason,
        err: info.error,
        attempts: info.attempts,
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        key: record.key,
        deadLetterTopic,
      },
      'record dead-lettered',
    );
  }

  private outage<T>(what: string, operation: () => Promise<T>, scope: RecordScope): Promise<T> {
    return retryUntilSuccess(
      operation,
      this.deps.settings.outageBackoff,
      scope.signal,
      (error, failures, nextDelayMs) =>
        this.deps.logger.error(
          { err: errorMessage(error), failures, nextDelayMs },
          `could not ${what} in MongoDB; the partition waits and retries`,
        ),
    );
  }
}
