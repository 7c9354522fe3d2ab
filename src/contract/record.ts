/**
 * The Kafka record contract shared by the relay (producer side) and the consumer helper.
 * Changing anything here is a breaking change for every downstream consumer: document it in the README.
 *
 * - key:   the change ID, i.e. the change event's resume token `_id._data` (a hex string).
 * - value: the whole change event as MongoDB Extended JSON v2 (relaxed by default, canonical by option).
 * - headers: see RecordHeader.
 */
export const RecordHeader = {
  /** Same as the record key: the resume token `_data` string. */
  changeId: 'change-id',
  /** The change event's `operationType` (insert, update, replace, delete, drop, rename, dropDatabase, invalidate, ...). */
  operationType: 'operation-type',
  /** `db.coll`, or `db` for database-level events; absent for events without a namespace. */
  ns: 'ns',
  /** The change event's `documentKey` as canonical Extended JSON; absent for events without one. */
  documentKey: 'document-key',
  /** The event's `clusterTime` as `<seconds>.<increment>`. */
  clusterTime: 'cluster-time',
  /** `application/vnd.mongodb.change-event+json; format=relaxed|canonical`. */
  contentType: 'content-type',
} as const;

export type RecordHeaderName = (typeof RecordHeader)[keyof typeof RecordHeader];

export type ExtendedJsonFormat = 'relaxed' | 'canonical';

export function contentTypeFor(format: ExtendedJsonFormat): string {
  return `application/vnd.mongodb.change-event+json; format=${format}`;
}

/** Headers of a dead-letter record, in addition to the original record's headers. */
export const DeadLetterHeader = {
  reason: 'dead-letter-reason',
  error: 'dead-letter-error',
  attempts: 'dead-letter-attempts',
  sourceTopic: 'dead-letter-source-topic',
  sourcePartition: 'dead-letter-source-partition',
  sourceOffset: 'dead-letter-source-offset',
} as const;
