/**
 * Change events and Kafka records shaped exactly like the relay's (see src/contract/record.ts), for
 * tests that need relay output without running the relay.
 *
 * - key: the resume token `_data` (hex); value: the change event as Extended JSON v2; headers: the
 *   contract's; partition: chosen from namespace + document key, so one document stays in one partition.
 */
import type { Message } from 'kafkajs';
import { BSON, Decimal128, ObjectId, Timestamp, type ChangeStreamDocument, type Document } from 'mongodb';

import { RecordHeader, contentTypeFor, type ExtendedJsonFormat } from '../../src/contract/record.js';
import { partitionFor as relayPartitionFor } from '../../src/pipeline/murmur2.js';

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, '0');
}

/**
 * A resume token `_data` string laid out like MongoDB's (KeyString hex: type byte 0x82, the cluster
 * time, then event identity). Tokens of later events sort after earlier ones as strings.
 */
export function resumeTokenData(clusterTime: Timestamp, ordinal: number): string {
  return `82${hex(clusterTime.t, 8)}${hex(clusterTime.i, 8)}2B022C0100296E5A1004${hex(ordinal, 32)}46645F6964002B0204`;
}

export interface ChangeEventFactoryOptions {
  readonly db: string;
  readonly coll: string;
  /** Cluster time seconds of the first event. Default: now. */
  readonly startSeconds?: number;
}

/** Makes a stream of change events for one collection with increasing cluster times and tokens. */
export class ChangeEventFactory {
  private seconds: number;
  private increment = 0;
  private ordinal = 0;

  constructor(private readonly options: ChangeEventFactoryOptions) {
    this.seconds = options.startSeconds ?? Math.floor(Date.now() / 1000);
  }

  get ns(): { db: string; coll: string } {
    return { db: this.options.db, coll: this.options.coll };
  }

  private next(): { _id: { _data: string }; clusterTime: Timestamp; wallTime: Date } {
    this.increment++;
    if (this.increment > 1000) {
      this.seconds++;
      this.increment = 1;
    }
    this.ordinal++;
    const clusterTime = new Timestamp({ t: this.seconds, i: this.increment });
    return {
      _id: { _data: resumeTokenData(clusterTime, this.ordinal) },
      clusterTime,
      wallTime: new Date(this.seconds * 1000 + this.increment),
    };
  }

  insert<T extends Document & { _id: unknown }>(fullDocument: T): ChangeStreamDocument<T> {
    return {
      ...this.next(),
      operationType: 'insert',
      ns: this.ns,
      documentKey: { _id: fullDocument._id },
      fullDocument,
    } as unknown as ChangeStreamDocument<T>;
  }

  /** An update as a relay with `fullDocument: 'updateLookup'` publishes it. */
  update<T extends Document & { _id: unknown }>(
    fullDocument: T,
    updatedFields: Document,
  ): ChangeStreamDocument<T> {
    return {
      ...this.next(),
      operationType: 'update',
      ns: this.ns,
      documentKey: { _id: fullDocument._id },
      updateDescription: { updatedFields, removedFields: [], truncatedArrays: [] },
      fullDocument,
    } as unknown as ChangeStreamDocument<T>;
  }

  replace<T extends Document & { _id: unknown }>(fullDocument: T): ChangeStreamDocument<T> {
    return {
      ...this.next(),
      operationType: 'replace',
      ns: this.ns,
      documentKey: { _id: fullDocument._id },
      fullDocument,
    } as unknown as ChangeStreamDocument<T>;
  }

  delete(id: unknown): ChangeStreamDocument {
    return {
      ...this.next(),
      operationType: 'delete',
      ns: this.ns,
      documentKey: { _id: id },
    } as unknown as ChangeStreamDocument;
  }
}

/** A document with one field of each BSON type the tests check after decoding. */
export function richDocument(seq: number, extra: Document = {}): Document & { _id: ObjectId } {
  return {
    _id: new ObjectId(),
    seq,
    price: Decimal128.fromString(`${seq}.10`),
    createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, seq % 60)),
    big: BSON.Long.fromString('9007199254740993'),
    ...extra,
  };
}

/** The relay's partition for a record: murmur2 of `ns \0 canonical document key`, as src/pipeline/toRecord.ts does. */
export function partitionFor(ns: string, documentKeyCanonical: string, partitions: number): number {
  return relayPartitionFor(Buffer.from(`${ns}\u0000${documentKeyCanonical}`), partitions);
}

export interface RelayRecordOptions {
  readonly format?: ExtendedJsonFormat;
  /** Partition count of the topic; the record's partition is derived from namespace + document key. */
  readonly partitions?: number;
}

export interface RelayRecord extends Message {
  key: string;
  value: string;
  partition: number;
  headers: Record<string, string>;
}

/** The Kafka record the relay publishes for `event`. */
export function toRelayRecord(event: ChangeStreamDocument, options: RelayRecordOptions = {}): RelayRecord {
  const format = options.format ?? 'relaxed';
  const changeId = (event._id as { _data: string })._data;
  const headers: Record<string, string> = {
    [RecordHeader.changeId]: changeId,
    [RecordHeader.operationType]: event.operationType,
    [RecordHeader.contentType]: contentTypeFor(format),
  };
  let nsText = '';
  if ('ns' in event && event.ns) {
    const ns = event.ns as { db: string; coll?: string };
    nsText = ns.coll === undefined ? ns.db : `${ns.db}.${ns.coll}`;
    headers[RecordHeader.ns] = nsText;
  }
  let documentKeyText = '';
  if ('documentKey' in event && event.documentKey) {
    documentKeyText = BSON.EJSON.stringify(event.documentKey, { relaxed: false });
    headers[RecordHeader.documentKey] = documentKeyText;
  }
  if (event.clusterTime) headers[RecordHeader.clusterTime] = `${event.clusterTime.t}.${event.clusterTime.i}`;
  return {
    key: changeId,
    value: BSON.EJSON.stringify(event, { relaxed: format === 'relaxed' }),
    headers,
    partition: partitionFor(nsText, documentKeyText, options.partitions ?? 1),
  };
}
