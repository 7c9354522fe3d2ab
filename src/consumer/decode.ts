import type { IHeaders, KafkaMessage } from 'kafkajs';
import { BSON, type Document } from 'mongodb';

import { RecordHeader } from '../contract/record.js';
import { PermanentHandlerError, errorMessage } from './errors.js';
import type { ChangeEvent, RecordMetadata } from './types.js';

export interface DecodeOptions {
  /** Passed to `EJSON.parse`. false (default): numbers as Int32/Double/Long, no precision loss. */
  readonly relaxed: boolean;
}

export type DecodedRecord<TSchema extends Document = Document> =
  | {
      readonly ok: true;
      readonly changeId: string;
      readonly event: ChangeEvent<TSchema>;
      readonly record: RecordMetadata;
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

/** The change ID of a record: its key, or the `change-id` header when the key is missing or empty. */
export function changeIdOf(
  key: Buffer | string | null,
  headers: Readonly<Record<string, string>>,
): string | null {
  const fromKey = (typeof key === 'string' ? key : key?.toString('utf8'))?.trim();
  if (fromKey) return fromKey;
  const fromHeader = headers[RecordHeader.changeId]?.trim();
  return fromHeader ? fromHeader : null;
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

/** Turns a Kafka record into a change ID and a typed change event, or says why it cannot. Never throws. */
export function decodeRecord<TSchema extends Document = Document>(
  topic: string,
  partition: number,
  message: KafkaMessage,
  options: DecodeOptions,
): DecodedRecord<TSchema> {
  const record = recordMetadata(topic, partition, message);
  const changeId = changeIdOf(record.key, record.key?.trim() ? {} : record.headers);
  if (changeId === null) {
    return {
      ok: false,
      reason: 'no-change-id',
      changeId: null,
      error: `record has neither a key nor a "${RecordHeader.changeId}" header`,
      record,
    };
  }
  if (message.value === null || message.value.length === 0) {
    return { ok: false, reason: 'decode-failed', changeId, error: 'record has no value', record };
  }
  const value = message.value;
  try {
    // The shape is checked now with the native JSON parser (cheap); the Extended JSON revival into BSON
    // types (the expensive part) waits until someone reads the event: duplicates and handlers that only
    // need the record (a batch handler keyed by document-key, a cache invalidator) never pay for it.
    checkChangeEventShape(JSON.parse(value.toString('utf8')));
    let event: ChangeEvent<TSchema> | undefined;
    return {
      ok: true,
      changeId,
      record,
      get event(): ChangeEvent<TSchema> {
        if (event === undefined) {
          try {
            event = parseChangeEvent<TSchema>(value, options);
          } catch (error) {
            throw new ChangeEventDecodeError(
              `value is not a change event in Extended JSON: ${errorMessage(error)}`,
              { cause: error },
            );
          }
        }
        return event;
      },
    };
  } catch (error) {
    return {
      ok: false,
      reason: 'decode-failed',
      changeId,
      error: `value is not a change event in Extended JSON: ${errorMessage(error)}`,
      record,
    };
  }
}
