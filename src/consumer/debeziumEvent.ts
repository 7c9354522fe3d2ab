/**
 * Reading the drop-in output formats (RELAY_OUTPUT_FORMAT, src/contract/record.ts) back into change
 * events: the Java driver's Extended JSON text both connectors write, and the change event rebuilt from a
 * Debezium envelope plus the relay's headers.
 */
import { BSON, type Document } from 'mongodb';

import { RecordHeader } from '../contract/record.js';
import type { RecordMetadata } from './types.js';

interface ParseOptions {
  /** Passed to `EJSON.parse`, as DecodeOptions.relaxed. */
  readonly relaxed: boolean;
}

/**
 * The Extended JSON the Java driver writes (strict mode, v1: `{"$date": <ms>}`,
 * `{"$binary": "<base64>", "$type": "<hex>"}`; or relaxed mode, v2) parsed into BSON types. bson's
 * `EJSON.parse` reads v1 only in its legacy mode, which also turns off the number wrappers of
 * `relaxed: false`; so the two v1 forms are rewritten to v2 first, then parsed as the relay's own records
 * are. Throws on text that is not JSON (Java prints a double NaN or Infinity as a bare token).
 */
export function parseJavaExtendedJson(text: string, options: ParseOptions): unknown {
  const v2: unknown = JSON.parse(text, upgradeLegacy);
  return BSON.EJSON.parse(JSON.stringify(v2), { relaxed: options.relaxed });
}

function upgradeLegacy(this: unknown, key: string, value: unknown): unknown {
  // JSON.stringify would print -0 as 0: keep it a double, as EJSON.parse would have read it.
  if (Object.is(value, -0)) return key === '$date' ? value : { $numberDouble: '-0.0' };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const fields = value as Record<string, unknown>;
  const names = Object.keys(fields);
  if (names.length === 1 && typeof fields.$date === 'number') {
    return { $date: { $numberLong: String(fields.$date) } };
  }
  if (names.length === 2 && typeof fields.$binary === 'string' && typeof fields.$type === 'string') {
    return { $binary: { base64: fields.$binary, subType: fields.$type } };
  }
  return value;
}

/** The parts of a Debezium envelope the rebuild reads (JsonConverter output, schemas off). */
export interface DebeziumEnvelope {
  readonly op: string;
  readonly source: { readonly db?: unknown; readonly collection?: unknown; readonly wallTime?: unknown };
  readonly before?: unknown;
  readonly after?: unknown;
  readonly updateDescription?: {
    readonly updatedFields?: unknown;
    readonly removedFields?: unknown;
    readonly truncatedArrays?: unknown;
  } | null;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Whether a parsed value looks like a Debezium envelope: a string `op` and an object `source`. */
export function isDebeziumEnvelope(parsed: unknown): parsed is DebeziumEnvelope {
  return isObject(parsed) && typeof parsed.op === 'string' && isObject(parsed.source);
}

/** The cheap check at decode time; throws when the value is not a Debezium envelope. */
export function checkDebeziumShape(parsed: unknown): asserts parsed is DebeziumEnvelope {
  if (!isObject(parsed)) throw new TypeError('the value is not a JSON object');
  if (!isDebeziumEnvelope(parsed)) {
    throw new TypeError('the value has no string "op" and object "source": not a Debezium envelope');
  }
}

/** The change ID a MongoDB Kafka connector key `{"_id": {"_data": "<change id>"}}` holds, else null. */
export function kafkaConnectChangeId(key: string | null): string | null {
  if (key === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(key);
  } catch {
    return null;
  }
  const id = isObject(parsed) ? parsed._id : undefined;
  const data = isObject(id) ? id._data : undefined;
  return typeof data === 'string' && data.trim() !== '' ? data : null;
}

/** The relay's `cluster-time` header (`<seconds>.<increment>`) as a Timestamp, or undefined. */
export function clusterTimeFromHeader(header: string | undefined): BSON.Timestamp | undefined {
  const parts = /^(\d+)\.(\d+)$/.exec(header ?? '');
  return parts ? new BSON.Timestamp({ t: Number(parts[1]), i: Number(parts[2]) }) : undefined;
}

function operationTypeOf(envelope: DebeziumEnvelope): string {
  switch (envelope.op) {
    case 'c':
      return 'insert';
    case 'u':
      return isObject(envelope.updateDescription) ? 'update' : 'replace';
    case 'd':
      return 'delete';
    case 'r':
      return 'snapshot';
    default:
      throw new TypeError(`unknown Debezium "op" ${JSON.stringify(envelope.op)}`);
  }
}

function documentKeyOf(record: RecordMetadata, options: ParseOptions): Document {
  const header = record.headers[RecordHeader.documentKey];
  if (header !== undefined) return BSON.EJSON.parse(header, { relaxed: options.relaxed }) as Document;
  const key: unknown = record.key === null ? undefined : JSON.parse(record.key);
  const id = isObject(key) ? key.id : undefined;
  if (typeof id !== 'string') {
    throw new TypeError('no "document-key" header and the key is not {"id": "<_id>"}');
  }
  return { _id: parseJavaExtendedJson(id, options) };
}

function truncatedArraysOf(value: unknown): { field: unknown; newSize: unknown }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TypeError('"updateDescription.truncatedArrays" is not an array');
  return value.map((t: { field?: unknown; size?: unknown }) => ({ field: t.field, newSize: t.size }));
}

/**
 * The change event a Debezium envelope written by the relay stands for: `_id` from the change ID,
 * `operationType`, `documentKey` and `clusterTime` from the relay's headers (else from `op` and the key;
 * no clusterTime), `ns` and `wallTime` from `source`, the documents and update description from the
 * envelope. Throws when a part does not parse.
 */
export function debeziumChangeEvent(
  envelope: DebeziumEnvelope,
  changeId: string,
  record: RecordMetadata,
  options: ParseOptions,
): Document {
  const h = record.headers;
  const event: Document = {
    _id: { _data: changeId },
    operationType: h[RecordHeader.operationType] ?? operationTypeOf(envelope),
  };
  const clusterTime = clusterTimeFromHeader(h[RecordHeader.clusterTime]);
  if (clusterTime) event.clusterTime = clusterTime;
  const { source } = envelope;
  if (typeof source.wallTime === 'number') event.wallTime = new Date(source.wallTime);
  if (typeof envelope.after === 'string') event.fullDocument = parseJavaExtendedJson(envelope.after, options);
  event.ns = { db: source.db, coll: source.collection };
  event.documentKey = documentKeyOf(record, options);
  const u = envelope.updateDescription;
  if (isObject(u)) {
    if (typeof u.updatedFields !== 'string') {
      throw new TypeError('"updateDescription.updatedFields" is not Extended JSON text');
    }
    event.updateDescription = {
      updatedFields: parseJavaExtendedJson(u.updatedFields, options),
      removedFields: u.removedFields ?? [],
      truncatedArrays: truncatedArraysOf(u.truncatedArrays),
    };
  }
  if (typeof envelope.before === 'string') {
    event.fullDocumentBeforeChange = parseJavaExtendedJson(envelope.before, options);
  }
  return event;
}
