/**
 * What the reader hands the pump, in stream order: a change to publish (already converted to its Kafka
 * record), a change the relay filters out (RELAY_OPERATION_TYPES), or a token-only tick. Each carries
 * the position the checkpoint may move to once it, and everything before it, is done.
 *
 * Conversion happens where the change is read (the reader thread when there is one), so the thread that
 * publishes does no per-event decoding or serialisation. The converter is stateful only in one way: a
 * tick carries the cluster time of the last change before it, so it must see every item in order.
 */
import type { ChangeStreamDocument, Timestamp } from 'mongodb';
import type { SourceItem } from '../source/changeSource.js';
import type { Position } from './ackWindow.js';
import { deadLetterFor, toRecord, type OutboundRecord, type RecordOptions } from './toRecord.js';
import type { TopicRouter } from './topicRouter.js';

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

  convert(item: SourceItem): ReadItem {
    if (item.kind === 'tick')
      return { kind: 'tick', position: { token: item.token, clusterTime: this.lastClusterTime } };
    const { event, token } = item;
    const clusterTime = (event as { clusterTime?: Timestamp }).clusterTime;
    if (clusterTime) this.lastClusterTime = clusterTime;
    const position: Position = { token, clusterTime: this.lastClusterTime };
    const types = this.o.operationTypes;
    if (types && !types.has(event.operationType))
      return { kind: 'filtered', position, operationType: event.operationType };
    const record = toRecord(event as ChangeStreamDocument, token, this.o.router, this.o.record);
    const readAt = performance.timeOrigin + item.readAt;
    const { deadLetter } = item;
    if (!deadLetter) return { kind: 'publish', position, record, readAt };
    return {
      kind: 'publish',
      position,
      record: deadLetterFor(record, deadLetter.reason, deadLetter.detail, this.o.deadLetterTopic),
      readAt,
      deadLetter: deadLetter.reason,
    };
  }
}
