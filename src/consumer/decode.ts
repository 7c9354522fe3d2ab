import type { IHeaders, KafkaMessage } from 'kafkajs';
import { BSON, type Document } from 'mongodb';

import { RecordHeader, outputFormatOf, type OutputFormat } from '../contract/record.js';
import {
  checkDebeziumShape,
  clusterTimeFromHeader,
  debeziumChangeEvent,
  isDebeziumEnvelope,
  kafkaConnectChangeId,
  parseJavaExtendedJson,
  type DebeziumEnvelope,
} from './debeziumEvent.js';
import { PermanentHandlerError, errorMessage } from './errors.js';
import type { ChangeEvent, RecordMetadata } from './types.js';

export interface DecodeOptions {
  /** Passed to `EJSON.parse`. false (default): numbers as Int32/Double/Long, no precision loss. */
  readonly relaxed: boolean;
  /**
   * The event will be read at once (a per-record handler gets it as its argument): a relay record is
   * then revived in one Extended JSON parse instead of a shape-check parse now and a revive later.
   * A value that does not revive falls back to the lazy path, so its error is the same either way.
   */
  readonly eager?: boolean;
}

export type DecodedRecord<TSchema extends Document = Document> =
  | {
      readonly ok: true;
      readonly changeId: string;
      readonly event: ChangeEvent<TSchema>;
      readonly record: RecordMetadata;
      /**
       * A state topic's tombstone (RELAY_KEY=document: null value after a delete, same change ID). Its
       * event is the delete rebuilt from the headers; it reaches a handler only when its delete record
       * was not seen (compacted away, or dead-lettered by the relay).
       */
      readonly tombstone: boolean;
    }
  | {
      readonly ok: false;
      readonly reason: 'no-change-id' | 'decode-failed';
      /** Known when only the value was bad (reason `decode-failed`). */
      readonly changeId: string | null;
      readonly error: string;
      readonly record: RecordMetadata;
    };

function headerValueToString(value: IHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (last === undefined) return undefined;
  return typeof last === 'string' ? last : last.toString('utf8');
}

/** Headers as UTF-8 strings; a header present several times yields its last value. */
export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  if (!headers) return decoded;
  for (const [name, value] of Object.entries(headers)) {
    const text = headerValueToString(value);
    if (text !== undefined) decoded[name] = text;
  }
  return decoded;
}

/**
 * The change ID of a record: its `change-id` header, or when the header is missing or empty its key
 * (the key's `_id._data` in the MongoDB Kafka connector's format; none in Debezium's, whose key is the
 * document). The header comes first because with RELAY_KEY=document (state topics) the key is the
 * document, not the change; in the default mode both are the same. Without the value, a Debezium record
 * is told only by its `content-type` header (decodeRecord also reads the value).
 */
export function changeIdOf(
  key: Buffer | string | null,
  headers: Readonly<Record<string, string>>,
): string | null {
  const keyText = typeof key === 'string' ? key : (key?.toString('utf8') ?? null);
  const header = headers[RecordHeader.changeId];
  const format = formatOf(headers[RecordHeader.contentType], keyText, header, undefined);
  const id = changeIdIn(format, keyText, header);
  return 'changeId' in id ? id.changeId : null;
}

function changeIdFrom(key: Buffer | string | null, header: string | undefined): string | null {
  const fromHeader = header?.trim();
  if (fromHeader) return fromHeader;
  const fromKey = (typeof key === 'string' ? key : key?.toString('utf8'))?.trim();
  return fromKey ? fromKey : null;
}

/** The record as handlers see it. Headers are decoded on first read: most records never need them. */
export function recordMetadata(topic: string, partition: number, message: KafkaMessage): RecordMetadata {
  let headers: Record<string, string> | undefined;
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ? message.key.toString('utf8') : null,
    get headers(): Record<string, string> {
      headers ??= decodeHeaders(message.headers);
      return headers;
    },
    timestamp: message.timestamp,
    message,
  };
}

/**
 * Parses a record value (Extended JSON v2, relaxed or canonical: the same parser reads both) into a
 * change event with BSON types. Throws when the value is not a change event.
 */
export function parseChangeEvent<TSchema extends Document = Document>(
  value: Buffer | string,
  options: DecodeOptions,
): ChangeEvent<TSchema> {
  const text = typeof value === 'string' ? value : value.toString('utf8');
  const parsed: unknown = BSON.EJSON.parse(text, { relaxed: options.relaxed });
  checkChangeEventShape(parsed);
  return parsed as ChangeEvent<TSchema>;
}

function checkChangeEventShape(parsed: unknown): void {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError('the value is not a JSON object');
  }
  const candidate = parsed as Document;
  if (typeof candidate.operationType !== 'string') {
    throw new TypeError('the value has no string "operationType": not a change event');
  }
  if (candidate._id === undefined || candidate._id === null) {
    throw new TypeError('the value has no "_id" (resume token): not a change event');
  }
}

/**
 * A value that passed the shape check but whose Extended JSON does not parse (an invalid `$oid`, ...):
 * found when the event is first read; the record is dead-lettered (reason `decode-failed`).
 */
export class ChangeEventDecodeError extends PermanentHandlerError {
  override readonly name: string = 'ChangeEventDecodeError';
}

type ParsedValue =
  { readonly ok: true; readonly json: unknown } | { readonly ok: false; readonly error: unknown };

function parseValue(value: Buffer): ParsedValue {
  try {
    return { ok: true, json: JSON.parse(value.toString('utf8')) as unknown };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * The output format of a record: the one its `content-type` header names; without the header `relay`,
 * unless the value is a Debezium envelope, or the key the MongoDB Kafka connector's
 * `{"_id": {"_data": ...}}` and no `change-id` header says otherwise (records of the real connectors).
 */
function formatOf(
  contentType: string | undefined,
  key: string | null,
  changeIdHeader: string | undefined,
  value: ParsedValue | undefined,
): OutputFormat {
  if (contentType !== undefined) return outputFormatOf(contentType);
  if (value?.ok && isDebeziumEnvelope(value.json) && !('operationType' in value.json)) return 'debezium';
  if (!changeIdHeader?.trim() && kafkaConnectChangeId(key) !== null) return 'mongo-kafka-connect';
  return 'relay';
}

/** The change ID of a record of `format`, or why it has none. */
function changeIdIn(
  format: OutputFormat,
  key: string | null,
  changeIdHeader: string | undefined,
): { readonly changeId: string } | { readonly error: string } {
  const fromHeader = changeIdHeader?.trim();
  if (fromHeader) return { changeId: fromHeader };
  if (format === 'debezium') {
    // Never the key: it is the document, so deduping by it would drop every change after the first.
    return {
      error:
        `Debezium records carry no change ID: the helper needs the relay's "${RecordHeader.changeId}" ` +
        'header, which this record lacks (a record of the Debezium connector itself cannot be deduplicated)',
    };
  }
  if (format === 'mongo-kafka-connect') {
    const changeId = kafkaConnectChangeId(key);
    return changeId !== null
      ? { changeId }
      : {
          error: `record has no "${RecordHeader.changeId}" header and its key is not the MongoDB Kafka connector's {"_id": {"_data": "<change id>"}}`,
        };
  }
  const changeId = changeIdFrom(key, undefined);
  return changeId !== null
    ? { changeId }
    : { error: `record has neither a key nor a "${RecordHeader.changeId}" header` };
}

/** Turns a Kafka record into a change ID and a typed change event, or says why it cannot. Never throws. */
export function decodeRecord<TSchema extends Document = Document>(
  topic: string,
  partition: number,
  message: KafkaMessage,
  options: DecodeOptions,
): DecodedRecord<TSchema> {
  const record = recordMetadata(topic, partition, message);
  // Only these headers are decoded here: most records never need the others.
  const changeIdHeader = headerValueToString(message.headers?.[RecordHeader.changeId]);
  const contentType = headerValueToString(message.headers?.[RecordHeader.contentType]);
  const value = message.value;
  // Without a content-type header the format may depend on the value: parsed (natively) up front then.
  let parsed =
    value === null || value.length === 0 || contentType !== undefined ? undefined : parseValue(value);
  const format = formatOf(contentType, record.key, changeIdHeader, parsed);
  const id = changeIdIn(format, record.key, changeIdHeader);
  if (!('changeId' in id)) {
    return { ok: false, reason: 'no-change-id', changeId: null, error: id.error, record };
  }
  const { changeId } = id;
  if (value === null && record.headers[RecordHeader.operationType] === 'delete') {
    return decodeTombstone(changeId, record, options);
  }
  if (value === null || value.length === 0) {
    return { ok: false, reason: 'decode-failed', changeId, error: 'record has no value', record };
  }
  const what = format === 'debezium' ? 'a Debezium change event' : 'a change event in Extended JSON';
  if (options.eager === true && format === 'relay') {
    const event = reviveEagerly<TSchema>(value, options);
    if (event !== undefined) return { ok: true, changeId, record, tombstone: false, event };
  }
  // Parsed once with the native JSON parser (cheap): the format of a record without content-type may
  // depend on it, and the shape check below needs it.
  parsed ??= parseValue(value);
  try {
    // The shape is checked now; the Extended JSON revival into BSON types (the expensive part) waits
    // until someone reads the event: duplicates and handlers that only need the record (a batch handler
    // keyed by document-key, a cache invalidator) never pay for it.
    if (!parsed.ok) throw parsed.error;
    return lazyEvent<TSchema>(
      changeId,
      record,
      reviverFor<TSchema>(format, parsed.json, value, changeId, record, options),
      what,
    );
  } catch (error) {
    return {
      ok: false,
      reason: 'decode-failed',
      changeId,
      error: `value is not ${what}: ${errorMessage(error)}`,
      record,
    };
  }
}

/** A relay record's event revived now, or undefined when it does not revive as a change event. */
function reviveEagerly<TSchema extends Document>(
  value: Buffer,
  options: DecodeOptions,
): ChangeEvent<TSchema> | undefined {
  try {
    return parseChangeEvent<TSchema>(value, options);
  } catch {
    return undefined;
  }
}

/**
 * Checks the shape of `json` and returns how to revive the event later. A function of its own so that
 * the closure holds only what its format needs: the parsed tree of a relay record is garbage at once.
 */
function reviverFor<TSchema extends Document>(
  format: OutputFormat,
  json: unknown,
  value: Buffer,
  changeId: string,
  record: RecordMetadata,
  options: DecodeOptions,
): () => ChangeEvent<TSchema> {
  if (format === 'debezium') {
    checkDebeziumShape(json);
    const envelope = json as DebeziumEnvelope;
    return () => debeziumChangeEvent(envelope, changeId, record, options) as ChangeEvent<TSchema>;
  }
  checkChangeEventShape(json);
  if (format === 'mongo-kafka-connect') {
    return () => {
      const event = parseJavaExtendedJson(value.toString('utf8'), options);
      checkChangeEventShape(event);
      return event as ChangeEvent<TSchema>;
    };
  }
  return () => parseChangeEvent<TSchema>(value, options);
}

/** A decoded record whose event is revived on first read; a revive failure is a ChangeEventDecodeError. */
function lazyEvent<TSchema extends Document>(
  changeId: string,
  record: RecordMetadata,
  revive: () => ChangeEvent<TSchema>,
  what: string,
): DecodedRecord<TSchema> {
  let event: ChangeEvent<TSchema> | undefined;
  return {
    ok: true,
    changeId,
    record,
    tombstone: false,
    get event(): ChangeEvent<TSchema> {
      if (event === undefined) {
        try {
          event = revive();
        } catch (error) {
          throw new ChangeEventDecodeError(`value is not ${what}: ${errorMessage(error)}`, {
            cause: error,
          });
        }
      }
      return event;
    },
  };
}

/**
 * A tombstone (null value) the relay wrote after a delete on a state topic: the delete event rebuilt from
 * its headers (`_id`, `operationType`, `ns`, `documentKey`, `clusterTime`; no `wallTime` or
 * transaction fields). Without a `document-key` header it is not the relay's: decode-failed.
 */
function decodeTombstone<TSchema extends Document>(
  changeId: string,
  record: RecordMetadata,
  options: DecodeOptions,
): DecodedRecord<TSchema> {
  const h = record.headers;
  const documentKey = h[RecordHeader.documentKey];
  const failed = (error: string): DecodedRecord<TSchema> => ({
    ok: false,
    reason: 'decode-failed',
    changeId,
    error,
    record,
  });
  if (documentKey === undefined) return failed('record has no value and no "document-key" header');
  let event: Document;
  try {
    event = { _id: { _data: changeId }, operationType: 'delete' };
    const ns = h[RecordHeader.ns];
    if (ns !== undefined) {
      // A database name never contains a dot; a collection name may.
      const dot = ns.indexOf('.');
      event.ns = dot < 0 ? { db: ns } : { db: ns.slice(0, dot), coll: ns.slice(dot + 1) };
    }
    event.documentKey = BSON.EJSON.parse(documentKey, { relaxed: options.relaxed }) as Document;
    const clusterTime = clusterTimeFromHeader(h[RecordHeader.clusterTime]);
    if (clusterTime) event.clusterTime = clusterTime;
  } catch (error) {
    return failed(`tombstone's "document-key" header is not Extended JSON: ${errorMessage(error)}`);
  }
  return { ok: true, changeId, record, tombstone: true, event: event as ChangeEvent<TSchema> };
}
