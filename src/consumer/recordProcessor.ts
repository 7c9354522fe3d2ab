/**
 * Takes a chunk of one partition's records from "fetched" to "may be committed": decode, one seen lookup
 * for the chunk (`$in`), handle (one record or one batch per call) with classified retries, dead-letter,
 * and write the seen marks in bulk.
 *
 * Invariant: `done` counts the records from the start of the chunk that are finished AND whose marks are
 * written (or, in transactional mode, committed with the handler's writes); only those may be resolved
 * and committed. Nothing here waits: a record that needs a retry later, or an unreachable MongoDB or
 * dead-letter topic, ends the chunk with a `wait` and the partition runner pauses the partition. What
 * must survive that pause (retry attempts, marks not yet written, dead letters not yet published) is kept
 * in the partition's PartitionMemory, so a record is never handled again only because a write failed.
 */
import type { KafkaMessage } from 'kafkajs';
import type { Document } from 'mongodb';

import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { DeadLetterInfo, DeadLetterReceipt, SourceRecord } from './deadLetter.js';
import { ChangeEventDecodeError, decodeRecord, type DecodedRecord } from './decode.js';
import type { DeliveryStrategy } from './delivery.js';
import { HandlerTimeoutError, errorMessage, errorName } from './errors.js';
import { HandlerDeadline } from './handlerCall.js';
import type { ConsumerLogger } from './logging.js';
import type { ConsumerMetrics } from './metrics.js';
import { classifyError, decideAfterFailure, type ErrorClassifier, type RetryLimits } from './retryPolicy.js';
import type { SeenMark } from './seenStore.js';
import type { ChangeBatchItem, RecordMetadata } from './types.js';
import type { ChunkResult, ChunkScope, ChunkWait, PartitionMemory, WaitReason } from './chunk.js';
import { MarkBuffer, type MarkStore } from './markBuffer.js';

/** The part of the dead-letter publisher the processor uses. */
export interface DeadLetterSink {
  publish(source: SourceRecord, info: DeadLetterInfo): Promise<DeadLetterReceipt>;
}

export interface ProcessorSettings {
  readonly retryLimits: RetryLimits;
  readonly handlerBackoff: BackoffPolicy;
  readonly outageBackoff: BackoffPolicy;
  readonly classify: ErrorClassifier | undefined;
  readonly handlerTimeoutMs: number;
  readonly relaxedEjson: boolean;
  /** Marks are written at the end of a chunk, or once the oldest unwritten one is this old (ms). */
  readonly markFlushIntervalMs: number;
}

export interface ProcessorDeps<TSchema extends Document> {
  readonly store: MarkStore;
  readonly delivery: DeliveryStrategy<TSchema>;
  readonly deadLetters: DeadLetterSink;
  readonly metrics: ConsumerMetrics;
  readonly logger: ConsumerLogger;
  readonly settings: ProcessorSettings;
  readonly now?: () => number;
  readonly random?: () => number;
}

type Decoded<TSchema extends Document> = DecodedRecord<TSchema>;

type GroupOutcome =
  | { readonly kind: 'handled' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'split' }
  | { readonly kind: 'interrupted' }
  | { readonly kind: 'dead-letter'; readonly info: DeadLetterInfo }
  | { readonly kind: 'wait'; readonly wait: ChunkWait };

function deadLetterMark(
  record: RecordMetadata,
  changeId: string,
  info: DeadLetterInfo,
  topic: string,
): SeenMark {
  return {
    changeId,
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    outcome: 'dead-lettered',
    deadLetter: { reason: info.reason, error: info.error, topic, attempts: info.attempts },
  };
}

export class RecordProcessor<TSchema extends Document> {
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: ProcessorDeps<TSchema>) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  async processChunk(
    topic: string,
    partition: number,
    messages: readonly KafkaMessage[],
    scope: ChunkScope,
  ): Promise<ChunkResult> {
    const deadline = new HandlerDeadline(scope.signal, this.deps.settings.handlerTimeoutMs);
    try {
      return await this.processChunkWith(deadline, topic, partition, messages, scope);
    } finally {
      deadline.close();
    }
  }

  private async processChunkWith(
    deadline: HandlerDeadline,
    topic: string,
    partition: number,
    messages: readonly KafkaMessage[],
    scope: ChunkScope,
  ): Promise<ChunkResult> {
    const { store, delivery, metrics, settings } = this.deps;
    const { memory } = scope;
    // A per-record handler reads every new event: revived in one parse (see DecodeOptions.eager).
    const decodeOptions = { relaxed: settings.relaxedEjson, eager: !delivery.batches };
    const decoded: Decoded<TSchema>[] = messages.map((message) =>
      decodeRecord<TSchema>(topic, partition, message, decodeOptions),
    );
    const ids = [...new Set(decoded.flatMap((d) => (d.changeId === null ? [] : [d.changeId])))];
    let seen: Set<string>;
    try {
      seen = await store.findSeen(ids);
    } catch (error) {
      return { done: 0, wait: this.outageWait('mongodb', error, messages[0]!.offset, memory) };
    }

    const dealtWith = new Set<string>();
    const marks = new MarkBuffer(store, memory, metrics, topic, this.now);
    const addMark = (offset: string, mark: SeenMark): void => {
      marks.add(offset, mark);
      dealtWith.add(mark.changeId);
    };
    // Counted once per chunk: a labelled counter costs more than the record it counts.
    let duplicates = 0;
    let committedInTransactions = 0;
    /** Ends the chunk after `index` records: all their marks written, or a wait for MongoDB. */
    const stopAt = async (index: number, wait?: ChunkWait): Promise<ChunkResult> => {
      const failure = await marks.drain(index);
      // Counted with the marks: when a test or a dashboard sees them, the chunk's marks are written.
      if (duplicates > 0) metrics.duplicates.inc({ topic }, duplicates);
      if (committedInTransactions > 0) metrics.handled.inc({ topic }, committedInTransactions);
      if (failure !== undefined) {
        return {
          done: marks.durable,
          wait: this.outageWait('mongodb', failure, messages[marks.durable]!.offset, memory),
        };
      }
      if (!wait) memory.outageFailures = 0;
      return wait ? { done: index, wait } : { done: index };
    };

    const deliverable = (index: number, group: ReadonlySet<string>): boolean => {
      const d = decoded[index]!;
      return (
        d.ok &&
        !seen.has(d.changeId) &&
        !dealtWith.has(d.changeId) &&
        !group.has(d.changeId) &&
        !memory.unwrittenMarks.has(messages[index]!.offset) &&
        !memory.unpublishedDeadLetters.has(messages[index]!.offset)
      );
    };

    let singlesUntil = 0;
    let index = 0;
    while (index < messages.length) {
      if (scope.signal.aborted) break;
      const d = decoded[index]!;
      const offset = messages[index]!.offset;

      const unwritten = memory.unwrittenMarks.get(offset);
      if (unwritten) {
        addMark(offset, unwritten);
        index++;
        continue;
      }
      if (d.changeId !== null && (seen.has(d.changeId) || dealtWith.has(d.changeId))) {
        // A tombstone after its handled delete shares its change ID by design: not a duplicate.
        if (!(d.ok && d.tombstone)) duplicates++;
        index++;
        continue;
      }
      const owed = memory.unpublishedDeadLetters.get(offset);
      if (owed || !d.ok) {
        const info: DeadLetterInfo = owed ?? {
          reason: d.ok ? 'handler-failed' : d.reason,
          error: d.ok ? '' : d.error,
          errorName: d.ok || d.reason === 'decode-failed' ? 'DecodeError' : 'MissingChangeIdError',
          attempts: 0,
        };
        const wait = await this.deadLetter(d.record, d.changeId, info, memory, addMark);
        if (wait) return stopAt(index, wait);
        index++;
        continue;
      }

      // A group: this record, or in batch mode the run of new decodable records from here.
      let end = index + 1;
      const groupIds = new Set<string>([d.changeId]);
      if (delivery.batches && index >= singlesUntil) {
        while (end < messages.length && deliverable(end, groupIds)) {
          groupIds.add(decoded[end]!.changeId!);
          end++;
        }
      }
      const items = decoded.slice(index, end).map((x) => {
        if (!x.ok) throw new Error('unreachable: a group holds decodable records only');
        // `event` stays lazy: parsed when the handler reads it.
        const item: ChangeBatchItem<TSchema> = {
          changeId: x.changeId,
          record: x.record,
          get event() {
            return x.event;
          },
        };
        return item;
      });
      const outcome = await this.deliverGroup(deadline, topic, partition, items, scope);
      switch (outcome.kind) {
        case 'handled':
          for (const item of items) {
            if (delivery.writesSeenMark) {
              dealtWith.add(item.changeId);
              committedInTransactions++;
            } else {
              addMark(item.record.offset, {
                changeId: item.changeId,
                topic: item.record.topic,
                partition: item.record.partition,
                offset: item.record.offset,
                outcome: 'handled',
              });
            }
          }
          index = end;
          break;
        case 'duplicate': {
          // Another delivery committed a mark first (transactional mode): learn which, then go on.
          let found: Set<string>;
          try {
            found = await store.findSeen(items.map((item) => item.changeId));
          } catch (error) {
            return stopAt(index, this.outageWait('mongodb', error, offset, memory));
          }
          if (found.size === 0) {
            const error = new Error('a seen mark blocked the transaction but cannot be read back yet');
            return stopAt(index, this.outageWait('mongodb', error, offset, memory));
          }
          for (const changeId of found) seen.add(changeId);
          break;
        }
        case 'split':
          singlesUntil = end;
          break;
        case 'dead-letter': {
          const wait = await this.deadLetter(
            items[0]!.record,
            items[0]!.changeId,
            outcome.info,
            memory,
            addMark,
          );
          if (wait) return stopAt(index, wait);
          index++;
          break;
        }
        case 'wait':
          return stopAt(index, outcome.wait);
        case 'interrupted':
          return stopAt(index);
      }

      await marks.flushIfDue(index, settings.markFlushIntervalMs);
      if (marks.failed) return stopAt(index);
    }
    return stopAt(index);
  }

  /** One handler call for `items` (one record, or one batch), with its timeout and classified failure. */
  private async deliverGroup(
    deadline: HandlerDeadline,
    topic: string,
    partition: number,
    items: ReadonlyArray<ChangeBatchItem<TSchema>>,
    scope: ChunkScope,
  ): Promise<GroupOutcome> {
    const { delivery, metrics, settings, logger } = this.deps;
    const { memory } = scope;
    const firstOffset = items[0]!.record.offset;
    const previous = memory.retry?.firstOffset === firstOffset ? memory.retry : undefined;
    const attempt = (previous?.attempts ?? 0) + 1;
    const endTimer = metrics.handlerDuration.startTimer({ topic });
    try {
      const result = await deadline.call((signal) =>
        delivery.deliver(items, { topic, partition, attempt, signal, heartbeat: scope.heartbeat }),
      );
      endTimer({ outcome: result === 'duplicate' ? 'duplicate' : 'success' });
      memory.retry = undefined;
      return { kind: result };
    } catch (error) {
      endTimer({ outcome: 'error' });
      // Stopped or revoked while the call ran: not the record's fault; it is not committed and comes again.
      if (scope.signal.aborted) return { kind: 'interrupted' };
      if (error instanceof HandlerTimeoutError) metrics.handlerTimeouts.inc({ topic });
      const kind = classifyError(error, settings.classify);
      const now = this.now();
      const firstFailureAt = previous?.firstFailureAt ?? now;
      const decision = decideAfterFailure(
        kind,
        attempt,
        firstFailureAt,
        now,
        settings.retryLimits,
        settings.handlerBackoff,
        this.random,
      );
      const message = errorMessage(error);
      logger.warn(
        {
          err: message,
          topic,
          partition,
          offset: firstOffset,
          changeId: items[0]!.changeId,
          records: items.length,
          attempt,
          kind,
          next: decision.action === 'retry' ? `retry in ${decision.delayMs} ms` : decision.because,
        },
        'change handler failed',
      );
      if (decision.action === 'retry') {
        memory.retry = { firstOffset, attempts: attempt, firstFailureAt, lastError: message };
        metrics.handlerRetries.inc({ topic });
        return {
          kind: 'wait',
          wait: {
            reason: 'handler-retry',
            delayMs: decision.delayMs,
            error: message,
            offset: firstOffset,
            attempts: attempt,
          },
        };
      }
      memory.retry = undefined;
      // A batch is not one change: find the failing one by handing the changes over one at a time.
      if (items.length > 1) return { kind: 'split' };
      const reason = error instanceof ChangeEventDecodeError ? 'decode-failed' : 'handler-failed';
      return {
        kind: 'dead-letter',
        info: { reason, error: message, errorName: errorName(error), attempts: attempt },
      };
    }
  }

  /** Publishes a dead letter and queues its mark; returns a wait when the publish failed. */
  private async deadLetter(
    record: RecordMetadata,
    changeId: string | null,
    info: DeadLetterInfo,
    memory: PartitionMemory,
    addMark: (offset: string, mark: SeenMark) => void,
  ): Promise<ChunkWait | undefined> {
    const source = { topic: record.topic, partition: record.partition, message: record.message };
    let receipt: DeadLetterReceipt;
    try {
      receipt = await this.deps.deadLetters.publish(source, info);
    } catch (error) {
      memory.unpublishedDeadLetters.set(record.offset, info);
      return this.outageWait('dead-letter-publish', error, record.offset, memory);
    }
    memory.unpublishedDeadLetters.delete(record.offset);
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
        deadLetterTopic: receipt.topic,
        deadLetterPartition: receipt.partition,
      },
      'record dead-lettered',
    );
    if (changeId !== null) addMark(record.offset, deadLetterMark(record, changeId, info, receipt.topic));
    return undefined;
  }

  private outageWait(reason: WaitReason, error: unknown, offset: string, memory: PartitionMemory): ChunkWait {
    memory.outageFailures++;
    const delayMs = backoffDelay(this.deps.settings.outageBackoff, memory.outageFailures, this.random);
    const message = errorMessage(error);
    this.deps.logger.error(
      { err: message, offset, failures: memory.outageFailures, nextDelayMs: delayMs },
      reason === 'mongodb'
        ? 'the seen collection in MongoDB failed; the partition pauses and retries'
        : 'publishing a dead letter failed; the partition pauses and retries',
    );
    return { reason, delayMs, error: message, offset };
  }
}
