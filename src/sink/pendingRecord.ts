/**
 * A record the sink holds until Kafka acknowledges it, and what happens to one Kafka cannot take:
 * a call refused as too large is split (its partitions alone, then one record at a time), and a single
 * record still too large is replaced by a small dead-letter record that names it. Nothing is dropped:
 * if even the dead-letter record is refused, the record's publish is rejected.
 */
import type { Logger } from 'pino';
import type { Position } from '../pipeline/ackWindow.js';
import { changeIdOf, deadLetterFor, type OutboundRecord } from '../pipeline/toRecord.js';
import { rootMessage } from './kafkaErrors.js';
import { topicPartition, type Route } from './produceRequests.js';

export type PublishOutcome = 'published' | 'dead-lettered';

export interface PendingRecord {
  record: OutboundRecord;
  deadLettered: boolean;
  resolve: (outcome: PublishOutcome) => void;
  reject: (error: Error) => void;
  /** The planned partition; kept across attempts while the topic's partition count stays the same. */
  route: Route | null;
  /** After a "too large" refusal: send this record's partition alone, or this record alone. */
  isolate: 'none' | 'partition' | 'record';
  /** Resolved or rejected: no longer part of a delivery. */
  settled: boolean;
  /** Where the stream is after this record (exactly-once: written with its transaction). */
  position?: Position;
  /** Exactly-once: a later item of the stream is not part of this record's MongoDB transaction. */
  transactionEnded?: boolean;
}

export function pendingRecord(
  record: OutboundRecord,
  resolve: (outcome: PublishOutcome) => void,
  reject: (error: Error) => void,
): PendingRecord {
  return { record, deadLettered: false, resolve, reject, route: null, isolate: 'none', settled: false };
}

export interface DeadLetterSettings {
  deadLetterTopic: string;
  logger: Logger;
  onDeadLetter?: (reason: string) => void;
}

/** Replace the record by its dead-letter record (same change ID), to be routed afresh. */
export function replaceWithDeadLetter(
  p: PendingRecord,
  reason: string,
  detail: string,
  settings: DeadLetterSettings,
): void {
  settings.logger.error(
    {
      changeId: changeIdOf(p.record),
      ns: p.record.ns,
      size: p.record.size,
      reason,
      deadLetterTopic: settings.deadLetterTopic,
    },
    'event cannot be published to Kafka; a dead-letter record names it',
  );
  p.record = deadLetterFor(p.record, reason, detail, settings.deadLetterTopic);
  p.deadLettered = true;
  p.route = null;
  p.isolate = 'none';
  settings.onDeadLetter?.(reason);
}

/** Kafka refused a call as too large: the partitions alone, then one record, then a dead letter. */
export function isolateTooLarge(call: PendingRecord[], error: unknown, settings: DeadLetterSettings): void {
  const partitions = new Set(call.map((p) => topicPartition(p.record.topic, p.route!.partition)));
  if (partitions.size > 1) {
    for (const p of call) p.isolate = 'partition';
    return;
  }
  if (call.length > 1) {
    for (const p of call) p.isolate = 'record';
    return;
  }
  const only = call[0]!;
  if (only.deadLettered) {
    only.settled = true;
    only.reject(
      new Error(
        `even the dead-letter record for ${changeIdOf(only.record)} is too large for Kafka: ${rootMessage(error)}`,
      ),
    );
    return;
  }
  replaceWithDeadLetter(only, 'too-large', rootMessage(error), settings);
}
