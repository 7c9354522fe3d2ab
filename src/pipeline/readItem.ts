/**
 * What the reader hands the pump, in stream order: a change to publish (already converted to its Kafka
 * record), a change the relay filters out (RELAY_OPERATION_TYPES), or a token-only tick. Each carries
 * the position the checkpoint may move to once it, and everything before it, is done.
 *
 * Conversion happens where the change is read (the reader thread when there is one), so the thread that
 * publishes does no per-event decoding or serialisation. The converter is stateful only in one way: a
 * tick carries the cluster time of the last change before it, so it must see every item in order.
 */
import { BSON, type ChangeStreamDocument, type Timestamp } from 'mongodb';
import type { ChangeSource, SourceItem } from '../source/changeSource.js';
import type { Position } from './ackWindow.js';
import {
  deadLetterFor,
  needsTombstone,
  toRecord,
  tombstoneFor,
  type OutboundRecord,
  type RecordOptions,
} from './toRecord.js';
import type { TopicRouter } from './topicRouter.js';
import { debeziumPublishes } from './output/debezium.js';
import { transactionOf } from '../source/mongoTransaction.js';

export type ReadItem =
  | {
      kind: 'publish';
      position: Position;
      record: OutboundRecord;
      /** When the change was read, epoch ms with sub-ms precision (comparable across threads). */
      readAt: number;
      /**
       * Set when the source could not read the event (RELAY_ON_UNREADABLE_EVENT=skip): `record` is then
       * its dead-letter record, and this is the reason.
       */
      deadLetter?: string;
      /**
       * RELAY_KEY=document, a delete: its tombstone, published right after `record` to the same
       * partition. The item is done only once both are acknowledged, so the checkpoint never passes a
       * delete whose tombstone Kafka does not have.
       */
      tombstone?: OutboundRecord;
    }
  | { kind: 'filtered'; position: Position; operationType: string }
  | { kind: 'tick'; position: Position };

export interface ConverterOptions {
  router: TopicRouter;
  record: RecordOptions;
  /** null: publish every operation type. */
  operationTypes: ReadonlySet<string> | null;
  /** Where events the source could not read are named (RELAY_DEAD_LETTER_TOPIC). */
  deadLetterTopic: string;
}

export class ChangeConverter {
  private lastClusterTime: Timestamp | null = null;

  constructor(private readonly o: ConverterOptions) {}

  /**
   * `item` converted; an event whose raw image the decoder rejects while its record is written goes
   * back to `source`, which names it for a dead-letter record (or throws, under
   * RELAY_ON_UNREADABLE_EVENT=fail), as for an event the driver could not decode.
   */
  convertFrom(source: Pick<ChangeSource, 'undecodable'>, item: SourceItem): ReadItem {
    try {
      return this.convert(item);
    } catch (error) {
      // isBSONError, not instanceof: the error may come from another copy of the bson package.
      if (item.kind !== 'change' || item.deadLetter || !BSON.BSONError.isBSONError(error)) throw error;
      return this.convert(source.undecodable(item, error));
    }
  }

  convert(item: SourceItem): ReadItem {
    if (item.kind === 'tick')
      return { kind: 'tick', position: { token: item.token, clusterTime: this.lastClusterTime } };
    const { event, token } = item;
    const clusterTime = (event as { clusterTime?: Timestamp }).clusterTime;
    if (clusterTime) this.lastClusterTime = clusterTime;
    const position: Position = { token, clusterTime: this.lastClusterTime };
    const transaction = transactionOf(event);
    if (transaction !== undefined) position.transaction = transaction;
    const types = this.o.operationTypes;
    if (types && !types.has(event.operationType))
      return { kind: 'filtered', position, operationType: event.operationType };
    // Debezium's connector publishes document changes only (no drop, rename, invalidate, ...).
    if (this.o.record.output === 'debezium' && !debeziumPublishes(event.operationType))
      return { kind: 'filtered', position, operationType: event.operationType };
    const record = toRecord(event as ChangeStreamDocument, token, this.o.router, this.o.record);
    const readAt = performance.timeOrigin + item.readAt;
    const { deadLetter } = item;
    const read: ReadItem = deadLetter
      ? {
          kind: 'publish',
          position,
          record: deadLetterFor(record, deadLetter.reason, deadLetter.detail, this.o.deadLetterTopic),
          readAt,
          deadLetter: deadLetter.reason,
        }
      : { kind: 'publish', position, record, readAt };
    // A delete MongoDB could not deliver (its pre-image gone) still deleted the document: the state
    // topic gets its tombstone, built from the record the event would have had.
    if (needsTombstone(this.o.record, event.operationType)) read.tombstone = tombstoneFor(record);
    return read;
  }
}

/** Record bytes a publish item puts in flight: its record and its tombstone, if any. */
export function publishBytes(item: Extract<ReadItem, { kind: 'publish' }>): number {
  return item.record.size + (item.tombstone?.size ?? 0);
}
