/**
 * A change event becomes a Kafka record, as the README's record contract says:
 * key = change ID, value = the whole event as Extended JSON, headers describing it, and a partition key
 * (namespace + document key) that keeps each document's changes in one partition.
 */
import type { ChangeStreamDocument, Timestamp } from 'mongodb';
import {
  DeadLetterHeader,
  RecordHeader,
  contentTypeFor,
  type ExtendedJsonFormat,
} from '../contract/record.js';
import type { ResumeToken } from '../source/resumeToken.js';
import { stringifyExtendedJson } from './extendedJson.js';
import type { TopicRouter } from './topicRouter.js';

export interface OutboundRecord {
  topic: string;
  key: string;
  /** The change event as Extended JSON: text, or its UTF-8 bytes when it came from the reader thread. */
  value: string | Buffer;
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
  const headers: Record<string, string> = {
    [RecordHeader.changeId]: token._data,
    [RecordHeader.operationType]: fields.operationType,
    [RecordHeader.contentType]: contentTypeFor(options.format),
  };
  if (ns !== '') headers[RecordHeader.ns] = ns;
  let documentKey = '';
  if (fields.documentKey !== undefined) {
    documentKey = stringifyExtendedJson(fields.documentKey, false);
    headers[RecordHeader.documentKey] = documentKey;
  }
  if (fields.clusterTime)
    headers[RecordHeader.clusterTime] = `${fields.clusterTime.high}.${fields.clusterTime.low}`;
  const value = stringifyExtendedJson(event, options.format === 'relaxed');
  const partitionKey =
    options.partitionBy === 'change-id' ? Buffer.from(token._data) : Buffer.from(`${ns}\u0000${documentKey}`);
  let size = Buffer.byteLength(token._data) + Buffer.byteLength(value);
  for (const k in headers) size += Buffer.byteLength(k) + Buffer.byteLength(headers[k]!);
  const record: OutboundRecord = {
    topic: router.topicFor(fields.ns),
    key: token._data,
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

/** What goes to the dead-letter topic instead of an event Kafka cannot take: enough to find it again. */
export function deadLetterFor(
  record: OutboundRecord,
  reason: string,
  detail: string,
  deadLetterTopic: string,
): OutboundRecord {
  const value = JSON.stringify({
    changeId: record.key,
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
