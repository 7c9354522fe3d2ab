/**
 * Read items in bulk across a thread boundary. The reader thread packs a run of items into one message
 * of typed arrays, a string table (repeats shared) and one ArrayBuffer holding every record value and
 * partition key (transferred, not copied); the pump's thread unpacks it into the same ReadItems it
 * would have made itself. Packing is columnar because structured cloning a few arrays costs far less
 * than cloning an object graph per event, and the value bytes are written once, straight from the
 * serialiser's string into the shared buffer.
 *
 * Invariant: decode(encode(items)) equals items, in order (values and partition keys come back as
 * Buffers; the tests check both directions). A publish item's tombstone (RELAY_KEY=document) crosses as
 * a second record right after the item's own, flagged by its null value.
 */
import { Timestamp } from 'mongodb';
import type { Position } from './ackWindow.js';
import type { ResumeToken } from '../source/resumeToken.js';
import type { ReadItem } from './readItem.js';
import type { OutboundRecord } from './toRecord.js';
import { DeadLetterHeader } from '../contract/record.js';
import type { SnapshotCursor } from '../snapshot/snapshotPlan.js';

const KIND_PUBLISH = 0;
const KIND_FILTERED = 1;
const KIND_TICK = 2;
/** A publish item whose record is the dead-letter record of an event the source could not read. */
const KIND_DEAD_LETTER = 3;
/** Or-ed into a publish item's kind: its record is followed by a tombstone record. */
const WITH_TOMBSTONE = 0x10;
/** Per record flag: the value is null (a tombstone), not empty. */
const NULL_VALUE = 1;
/** Per item: cluster time high, low (NaN: none), read time and event time (publish only; NaN: none). */
const TIMES = 4;
/** Per record: topic, key, ns, operation type, header count (refs into the string table). */
const RECORD_FIELDS = 5;
const SLOT_TOKEN = 0;
const SLOT_OPERATION_TYPE = 1;
const SLOT_TOPIC = 2;
const SLOT_NS = 3;
const SLOT_TRANSACTION = 4;
const SLOT_HEADERS = 5;
const NO_SNAPSHOT = 0xffffffff;
const NO_TRANSACTION = 0xffffffff;

export interface ItemBatchMessage {
  count: number;
  kinds: Uint8Array;
  strings: string[];
  /** Per item: token ref. */
  tokens: Uint32Array;
  /** Per item: ref of the snapshot cursor as JSON (snapshot items only), else NO_SNAPSHOT. */
  snapshots: Uint32Array;
  /** Per item: ref of its MongoDB transaction (Position.transaction), else NO_TRANSACTION. */
  transactions: Uint32Array;
  /** Per item, TIMES values: cluster time high, low (NaN: none), read time, event time (publish only). */
  times: Float64Array;
  /** Per item: operation type ref (publish and filtered). */
  operationTypes: Uint32Array;
  records: Uint32Array;
  /** Header name/value ref pairs of every record, in order. */
  headers: Uint32Array;
  /** Per record: size, value start, value end (= partition key start), partition key end. */
  spans: Uint32Array;
  /** Per record: NULL_VALUE or 0. */
  recordFlags: Uint8Array;
  bytes: ArrayBuffer;
}

/** Collects items of one batch; take() hands the message and what to transfer with it. */
export class ItemBatchBuilder {
  private count = 0;
  private recordCount = 0;
  private headerCount = 0;
  private byteLength = 0;
  private kinds: Uint8Array;
  private tokens: Uint32Array;
  private snapshots: Uint32Array;
  private transactions: Uint32Array;
  private times: Float64Array;
  private operationTypes: Uint32Array;
  private records: Uint32Array;
  private headers: Uint32Array;
  private spans: Uint32Array;
  private recordFlags: Uint8Array;
  private bytes: Buffer;
  private strings: string[] = [];
  private lastStrings: (string | undefined)[] = [];
  private lastRefs: number[] = [];

  constructor(
    readonly maxItems: number,
    private readonly initialBytes: number,
  ) {
    this.kinds = new Uint8Array(maxItems);
    this.tokens = new Uint32Array(maxItems);
    this.snapshots = new Uint32Array(maxItems);
    this.transactions = new Uint32Array(maxItems);
    this.times = new Float64Array(maxItems * TIMES);
    this.operationTypes = new Uint32Array(maxItems);
    this.records = new Uint32Array(maxItems * RECORD_FIELDS);
    this.headers = new Uint32Array(maxItems * 16);
    this.spans = new Uint32Array(maxItems * 4);
    this.recordFlags = new Uint8Array(maxItems);
    this.bytes = Buffer.alloc(initialBytes);
  }

  get size(): number {
    return this.count;
  }

  get bytesUsed(): number {
    return this.byteLength;
  }

  get isFull(): boolean {
    return this.count >= this.maxItems;
  }

  add(item: ReadItem): void {
    if (this.isFull) throw new Error('item batch is full; take() it first');
    const i = this.count++;
    this.tokens[i] = this.ref(SLOT_TOKEN, item.position.token._data);
    const snapshot = item.position.snapshot;
    this.snapshots[i] = snapshot ? this.strings.push(JSON.stringify(snapshot)) - 1 : NO_SNAPSHOT;
    const transaction = item.position.transaction;
    this.transactions[i] =
      transaction === undefined ? NO_TRANSACTION : this.ref(SLOT_TRANSACTION, transaction);
    const ct = item.position.clusterTime;
    this.times[i * TIMES] = ct ? ct.high : NaN;
    this.times[i * TIMES + 1] = ct ? ct.low : NaN;
    if (item.kind === 'tick') {
      this.kinds[i] = KIND_TICK;
      return;
    }
    if (item.kind === 'filtered') {
      this.kinds[i] = KIND_FILTERED;
      this.operationTypes[i] = this.ref(SLOT_OPERATION_TYPE, item.operationType);
      return;
    }
    this.kinds[i] =
      (item.deadLetter ? KIND_DEAD_LETTER : KIND_PUBLISH) | (item.tombstone ? WITH_TOMBSTONE : 0);
    const r = item.record;
    this.times[i * TIMES + 2] = item.readAt;
    this.times[i * TIMES + 3] = r.eventTimeMs ?? NaN;
    this.operationTypes[i] = this.ref(SLOT_OPERATION_TYPE, r.operationType);
    this.addRecord(r);
    if (item.tombstone) this.addRecord(item.tombstone);
  }

  private addRecord(r: OutboundRecord): void {
    const names = Object.keys(r.headers);
    if (this.recordCount >= this.recordFlags.length) {
      this.records = grow(this.records);
      this.spans = grow(this.spans);
      const flags = new Uint8Array(this.recordFlags.length * 2);
      flags.set(this.recordFlags);
      this.recordFlags = flags;
    }
    this.recordFlags[this.recordCount] = r.value === null ? NULL_VALUE : 0;
    const at = this.recordCount++ * RECORD_FIELDS;
    this.records[at] = this.ref(SLOT_TOPIC, r.topic);
    // The key is usually the change ID, the token's string (a repeat); with RELAY_KEY=document, the
    // document's identity (repeated by its tombstone).
    this.records[at + 1] = this.ref(SLOT_TOKEN, r.key);
    this.records[at + 2] = this.ref(SLOT_NS, r.ns);
    this.records[at + 3] = this.ref(SLOT_OPERATION_TYPE, r.operationType);
    this.records[at + 4] = names.length;
    if ((this.headerCount + names.length) * 2 > this.headers.length) this.headers = grow(this.headers);
    for (let h = 0; h < names.length; h++) {
      const name = names[h]!;
      this.headers[this.headerCount * 2] = this.ref(SLOT_HEADERS + 2 * h, name);
      this.headers[this.headerCount * 2 + 1] = this.ref(SLOT_HEADERS + 2 * h + 1, r.headers[name]!);
      this.headerCount += 1;
    }
    const spanAt = (this.recordCount - 1) * 4;
    this.spans[spanAt] = r.size;
    this.spans[spanAt + 1] = this.byteLength;
    if (r.value !== null) this.writeBytes(r.value);
    this.spans[spanAt + 2] = this.byteLength;
    this.writeBytes(r.partitionKey);
    this.spans[spanAt + 3] = this.byteLength;
  }

  /**
   * The batch so far as a message, and the buffer to transfer with it; the builder starts afresh. The
   * bytes are copied into a buffer of exactly their size (what the receiver keeps alive until the last
   * record is acknowledged); the builder's own buffer is reused.
   */
  take(): { message: ItemBatchMessage; transfer: ArrayBuffer[] } {
    const bytes = new ArrayBuffer(this.byteLength);
    this.bytes.copy(new Uint8Array(bytes), 0, 0, this.byteLength);
    const message: ItemBatchMessage = {
      count: this.count,
      kinds: this.kinds.slice(0, this.count),
      strings: this.strings,
      tokens: this.tokens.slice(0, this.count),
      snapshots: this.snapshots.slice(0, this.count),
      transactions: this.transactions.slice(0, this.count),
      times: this.times.slice(0, this.count * TIMES),
      operationTypes: this.operationTypes.slice(0, this.count),
      records: this.records.slice(0, this.recordCount * RECORD_FIELDS),
      headers: this.headers.slice(0, this.headerCount * 2),
      spans: this.spans.slice(0, this.recordCount * 4),
      recordFlags: this.recordFlags.slice(0, this.recordCount),
      bytes,
    };
    this.count = 0;
    this.recordCount = 0;
    this.headerCount = 0;
    this.byteLength = 0;
    this.strings = [];
    this.lastStrings = [];
    this.lastRefs = [];
    if (this.bytes.length > this.initialBytes) this.bytes = Buffer.alloc(this.initialBytes);
    return { message, transfer: [bytes] };
  }

  /**
   * The string's index in the table. Strings repeat field by field (topic, namespace, operation type,
   * header names, content type), so each field ("slot") remembers its last string: a repeat costs one
   * comparison, a new string one push, and no hashing either way.
   */
  private ref(slot: number, s: string): number {
    if (this.lastStrings[slot] === s) return this.lastRefs[slot]!;
    const r = this.strings.length;
    this.strings.push(s);
    this.lastStrings[slot] = s;
    this.lastRefs[slot] = r;
    return r;
  }

  private writeBytes(data: string | Buffer): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8: room for that, then write in one pass.
    const room = typeof data === 'string' ? data.length * 3 : data.length;
    if (this.byteLength + room > this.bytes.length) {
      const bigger = Buffer.alloc(Math.max(this.bytes.length * 2, this.byteLength + room));
      this.bytes.copy(bigger, 0, 0, this.byteLength);
      this.bytes = bigger;
    }
    this.byteLength +=
      typeof data === 'string'
        ? this.bytes.write(data, this.byteLength, 'utf8')
        : data.copy(this.bytes, this.byteLength);
  }
}

function grow(a: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

/**
 * A position as it arrives: its cluster time becomes a BSON Timestamp only when someone asks (the
 * checkpoint write, the lag gauge), not for every event.
 */
class ReceivedPosition implements Position {
  readonly token: ResumeToken;
  snapshot?: SnapshotCursor;
  transaction?: string;
  private time: Timestamp | null | undefined;

  constructor(
    data: string,
    private readonly high: number,
    private readonly low: number,
  ) {
    this.token = { _data: data };
  }

  get clusterTime(): Timestamp | null {
    if (this.time === undefined)
      this.time = Number.isNaN(this.high) ? null : new Timestamp({ t: this.high, i: this.low });
    return this.time;
  }
}

/** Reads a message's records in order (an item's own record, then its tombstone, if any). */
class RecordReader {
  private record = 0;
  private header = 0;

  constructor(
    private readonly m: ItemBatchMessage,
    private readonly bytes: Buffer,
  ) {}

  next(eventTimeMs: number): OutboundRecord {
    const { m, bytes } = this;
    const s = m.strings;
    const at = this.record * RECORD_FIELDS;
    const headers: Record<string, string> = {};
    for (let h = 0; h < m.records[at + 4]!; h++, this.header++)
      headers[s[m.headers[this.header * 2]!]!] = s[m.headers[this.header * 2 + 1]!]!;
    const span = this.record * 4;
    const r: OutboundRecord = {
      topic: s[m.records[at]!]!,
      key: s[m.records[at + 1]!]!,
      value:
        m.recordFlags[this.record]! & NULL_VALUE
          ? null
          : bytes.subarray(m.spans[span + 1], m.spans[span + 2]),
      headers,
      partitionKey: bytes.subarray(m.spans[span + 2], m.spans[span + 3]),
      size: m.spans[span]!,
      ns: s[m.records[at + 2]!]!,
      operationType: s[m.records[at + 3]!]!,
    };
    if (!Number.isNaN(eventTimeMs)) r.eventTimeMs = eventTimeMs;
    this.record += 1;
    return r;
  }
}

/** The items of a message, in order; record values and partition keys are views on its buffer. */
export function decodeItemBatch(m: ItemBatchMessage): ReadItem[] {
  const items: ReadItem[] = new Array<ReadItem>(m.count);
  const records = new RecordReader(m, Buffer.from(m.bytes));
  const s = m.strings;
  for (let i = 0; i < m.count; i++) {
    const position = new ReceivedPosition(s[m.tokens[i]!]!, m.times[i * TIMES]!, m.times[i * TIMES + 1]!);
    const snapshot = m.snapshots[i]!;
    if (snapshot !== NO_SNAPSHOT) position.snapshot = JSON.parse(s[snapshot]!) as SnapshotCursor;
    const transaction = m.transactions[i]!;
    if (transaction !== NO_TRANSACTION) position.transaction = s[transaction]!;
    const kind = m.kinds[i]! & ~WITH_TOMBSTONE;
    if (kind === KIND_TICK) {
      items[i] = { kind: 'tick', position };
      continue;
    }
    if (kind === KIND_FILTERED) {
      items[i] = { kind: 'filtered', position, operationType: s[m.operationTypes[i]!]! };
      continue;
    }
    const eventTimeMs = m.times[i * TIMES + 3]!;
    const r = records.next(eventTimeMs);
    const readAt = m.times[i * TIMES + 2]!;
    const item: ReadItem =
      kind === KIND_DEAD_LETTER
        ? {
            kind: 'publish',
            position,
            record: r,
            readAt,
            deadLetter: r.headers[DeadLetterHeader.reason] ?? 'unreadable',
          }
        : { kind: 'publish', position, record: r, readAt };
    if (m.kinds[i]! & WITH_TOMBSTONE) item.tombstone = records.next(eventTimeMs);
    items[i] = item;
  }
  return items;
}
