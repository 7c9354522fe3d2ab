/**
 * The Kafka record contract shared by the relay (producer side) and the consumer helper.
 * Changing anything here is a breaking change for every downstream consumer: document it in the README.
 *
 * - key:   the change ID, i.e. the change event's resume token `_id._data` (a hex string).
 * - value: the whole change event as MongoDB Extended JSON v2 (relaxed by default, canonical by option).
 * - headers: see RecordHeader.
 */
import { OUTPUT_FORMATS, type OutputFormat } from '../config/outputFormat.js';

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

/**
 * RELAY_OUTPUT_FORMAT: `relay` is the contract above; the others make key, value and topic what another
 * tool's default JSON output gives, so its consumers keep working (README, "Drop-in output formats"):
 *  - `debezium`: Debezium's MongoDB connector (JsonConverter, schemas off): key `{"id": "<_id>"}`, value
 *    the envelope with `before`/`after`/`updateDescription`/`source`/`op`, a tombstone after each delete;
 *  - `mongo-kafka-connect`: the MongoDB Kafka source connector (StringConverter, DefaultJson formatter):
 *    key `{"_id": <resume token>}`, value the change event in Extended JSON v1 (strict).
 * The relay's own headers (change ID, operation type, ...) travel in every format.
 */
export { OUTPUT_FORMATS, type OutputFormat };

export function contentTypeFor(format: ExtendedJsonFormat, output: OutputFormat = 'relay'): string {
  if (output !== 'relay') return `${OUTPUT_CONTENT_TYPE_PREFIX}${output}`;
  return `application/vnd.mongodb.change-event+json; format=${format}`;
}

/** The content type of the drop-in formats is this followed by the format's name. */
export const OUTPUT_CONTENT_TYPE_PREFIX = 'application/json; format=';

/** The output format a record's content-type header names ('relay' when it names none of the others). */
export function outputFormatOf(contentType: string | undefined): OutputFormat {
  if (contentType?.startsWith(OUTPUT_CONTENT_TYPE_PREFIX)) {
    const name = contentType.slice(OUTPUT_CONTENT_TYPE_PREFIX.length);
    if ((OUTPUT_FORMATS as readonly string[]).includes(name)) return name as OutputFormat;
  }
  return 'relay';
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
