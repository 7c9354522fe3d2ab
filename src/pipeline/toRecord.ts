/**
 * A change event becomes a Kafka record, as the README's record contract says:
 * key = change ID, value = the whole event as Extended JSON, headers describing it, and a partition key
 * (namespace + document key) that keeps each document's changes in one partition.
 *
 * With RELAY_KEY=document (state topics) the key is the partition key itself, `ns + "\0" + document key`
 * (canonical Extended JSON; empty for events without one): Kafka's default partitioner would choose the
 * same partition from it, and a topic shared by several namespaces never merges two documents. The
 * change ID then travels only in the `change-id` header — read it with changeIdOf(), never from the key.
 * A delete is followed by its tombstone (tombstoneFor): same key, partition and headers, null value.
 */
import type { ChangeStreamDocument, Timestamp } from 'mongodb';
import {
  DeadLetterHeader,
  RecordHeader,
  contentTypeFor,
  type ExtendedJsonFormat,
  type OutputFormat,
} from '../contract/record.js';
import type { RecordKey } from '../config/schema.js';
import type { ResumeToken } from '../source/resumeToken.js';
import { withDecodedImages } from '../source/rawEvent.js';
import { stringifyExtendedJson } from './extendedJson.js';
import { debeziumHeaders, debeziumKey, debeziumValue, type DebeziumContext } from './output/debezium.js';
import { kafkaConnectKey, kafkaConnectValue } from './output/kafkaConnect.js';
import type { TopicRouter } from './topicRouter.js';

export interface OutboundRecord {
  topic: string;
  /** The change ID, or with RELAY_KEY=document the namespace + document key (the partition key's text). */
  key: string;
  /**
   * The change event as Extended JSON: text, or its UTF-8 bytes when it came from the reader thread;
   * null for a tombstone (RELAY_KEY=document, after a delete).
   */
  value: string | Buffer | null;
  headers: Record<string, string>;
  /** Bytes hashed to choose the partition (ns + document key, or the change ID). */
  partitionKey: Buffer;
  /** key + value + headers, what counts against the broker's size limit. */
  size: number;
  ns: string;
  operationType: string;
  /** When the change happened (ms): the event's wallTime, else its clusterTime's seconds; may be absent. */
  eventTimeMs?: number;
}

export interface RecordOptions {
  format: ExtendedJsonFormat;
  partitionBy: 'document' | 'change-id';
  /** RELAY_KEY (default change-id). `document` needs partitionBy `document` (the config refuses others). */
  key?: RecordKey;
  /** RELAY_OUTPUT_FORMAT (default relay): key, value and extra headers of a drop-in format. */
  output?: OutputFormat;
  /** Needed with output `debezium`. */
  debezium?: DebeziumContext;
}

interface EventFields {
  operationType: string;
  ns?: { db: string; coll?: string };
  documentKey?: unknown;
  clusterTime?: Timestamp;
  wallTime?: Date;
}

export function toRecord(
  event: ChangeStreamDocument,
  token: ResumeToken,
  router: TopicRouter,
  options: RecordOptions,
): OutboundRecord {
  const fields = event as unknown as EventFields;
  const ns = fields.ns
    ? fields.ns.coll !== undefined
      ? `${fields.ns.db}.${fields.ns.coll}`
      : fields.ns.db
    : '';
  const output = options.output ?? 'relay';
  const headers: Record<string, string> = {
    [RecordHeader.changeId]: token._data,
    [RecordHeader.operationType]: fields.operationType,
    [RecordHeader.contentType]: contentTypeFor(options.format, output),
  };
  if (ns !== '') headers[RecordHeader.ns] = ns;
  let documentKey = '';
  if (fields.documentKey !== undefined) {
    documentKey = stringifyExtendedJson(fields.documentKey, false);
    headers[RecordHeader.documentKey] = documentKey;
  }
  if (fields.clusterTime)
    headers[RecordHeader.clusterTime] = `${fields.clusterTime.high}.${fields.clusterTime.low}`;
  const documentIdentity = `${ns}\u0000${documentKey}`;
  let key: string;
  let value: string;
  let partitionKey: Buffer;
  if (output === 'debezium') {
    const context = options.debezium!;
    Object.assign(headers, debeziumHeaders(context));
    key = debeziumKey(fields.documentKey);
    value = debeziumValue(withDecodedImages(event), context, Date.now());
    // Debezium's records are partitioned by their key bytes (Kafka's default partitioner): the same
    // partitions, and still one per document (the key is the document's _id, the topic its collection).
    partitionKey = Buffer.from(key);
  } else {
    if (output === 'mongo-kafka-connect') {
      key = kafkaConnectKey((event as { _id?: unknown })._id ?? token);
      value = kafkaConnectValue(withDecodedImages(event));
    } else {
      key = options.key === 'document' ? documentIdentity : token._data;
      value = stringifyExtendedJson(event, options.format === 'relaxed');
    }
    partitionKey =
      options.partitionBy === 'change-id' ? Buffer.from(token._data) : Buffer.from(documentIdentity);
  }
  const size = keyAndHeadersSize(key, headers) + Buffer.byteLength(value);
  const record: OutboundRecord = {
    topic: router.topicFor(fields.ns),
    key,
    value,
    headers,
    partitionKey,
    size,
    ns,
    operationType: fields.operationType,
  };
  const eventTimeMs =
    fields.wallTime?.getTime() ?? (fields.clusterTime ? fields.clusterTime.high * 1000 : undefined);
  if (eventTimeMs !== undefined && Number.isFinite(eventTimeMs)) record.eventTimeMs = eventTimeMs;
  return record;
}

/**
 * The tombstone that follows a delete on a state topic: the delete record's topic, key, partition key and
 * headers (so it carries the same change ID), and a null value. Compaction then drops every record of the
 * document, the delete record included, and finally the tombstone itself (after delete.retention.ms).
 */
export function tombstoneFor(deleteRecord: OutboundRecord): OutboundRecord {
  const tombstone: OutboundRecord = {
    ...deleteRecord,
    value: null,
    size: keyAndHeadersSize(deleteRecord.key, deleteRecord.headers),
  };
  return tombstone;
}

/** Whether a change is followed by a tombstone: a delete, with RELAY_KEY=document or Debezium's format. */
export function needsTombstone(options: RecordOptions, operationType: string): boolean {
  return (options.key === 'document' || options.output === 'debezium') && operationType === 'delete';
}

/** The change ID of a record: its `change-id` header (the key only in change-id mode). */
export function changeIdOf(record: Pick<OutboundRecord, 'key' | 'headers'>): string {
  return record.headers[RecordHeader.changeId] ?? record.key;
}

function keyAndHeadersSize(key: string, headers: Record<string, string>): number {
  let size = Buffer.byteLength(key);
  for (const k in headers) size += Buffer.byteLength(k) + Buffer.byteLength(headers[k]!);
  return size;
}

/** What goes to the dead-letter topic instead of an event Kafka cannot take: enough to find it again. */
export function deadLetterFor(
  record: OutboundRecord,
  reason: string,
  detail: string,
  deadLetterTopic: string,
): OutboundRecord {
  const value = JSON.stringify({
    changeId: changeIdOf(record),
    ns: record.ns,
    operationType: record.operationType,
    documentKey: record.headers[RecordHeader.documentKey] ?? null,
    clusterTime: record.headers[RecordHeader.clusterTime] ?? null,
    intendedTopic: record.topic,
    size: record.size,
    reason,
    detail,
  });
  const headers = {
    ...record.headers,
    [DeadLetterHeader.reason]: reason,
    [RecordHeader.contentType]: 'application/json',
  };
  return {
    ...record,
    topic: deadLetterTopic,
    value,
    headers,
    size: Buffer.byteLength(value) + Buffer.byteLength(record.key),
  };
}
