/**
 * A byte-identical, allocation-light replacement for kafkajs 2.2's record encoder
 * (kafkajs/src/protocol/recordBatch/record/v0), the per-record step of every produce request.
 *
 * Why: kafkajs encodes each record through a fresh 512-byte zero-filled Encoder, one more per header,
 * a Buffer per varint and Long objects for the timestamp delta — about 25 allocations per record with
 * the relay's six headers. Profiles of the relay show that work (and the garbage it leaves) as the
 * largest share of the publishing thread. This encoder computes the record's exact size first and
 * writes it into one pooled buffer.
 *
 * How: kafkajs is CommonJS and its produce request module (produce/v3/request.js, loaded lazily on the
 * first produce) takes the record encoder from the module cache, so the cache entry is replaced before
 * that. install() refuses (returns false, kafkajs stays as it is) if the request module is already
 * loaded or kafkajs is not the 2.2 line this was written against. The output is the Kafka record
 * format v2 ("Record" in KIP-98), exactly as kafkajs writes it; a unit test compares both encoders on
 * random records.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Bytes = Buffer | string | null | undefined;
type HeaderValue = Bytes | Bytes[];

export interface RecordInput {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, HeaderValue>;
}

/** What kafkajs's RecordBatch reads from an encoded record: an Encoder with `buf` and `offset`. */
interface EncoderLike {
  buf: Buffer;
  offset: number;
}

const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0';
const REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request';
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder';

const zigZag32 = (v: number): number => ((v << 1) ^ (v >> 31)) >>> 0;
// Exact for |v| < 2^52; timestamp deltas within a batch are milliseconds.
const zigZag64 = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);

function sizeOfUnsignedVarint(u: number): number {
  let n = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    n += 1;
  }
  return n;
}

function writeUnsignedVarint(buf: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80;
    u = Math.floor(u / 128);
  }
  buf[at++] = u;
  return at;
}

/** Byte length of a nullable bytes field, -1 for null. */
function lengthOf(v: Bytes): number {
  if (v === null || v === undefined) return -1;
  return Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v));
}

function fieldSize(length: number): number {
  return length < 0 ? 1 : sizeOfUnsignedVarint(zigZag32(length)) + length;
}

function writeField(buf: Buffer, at: number, v: Bytes, length: number): number {
  if (length < 0) return writeUnsignedVarint(buf, at, zigZag32(-1));
  at = writeUnsignedVarint(buf, at, zigZag32(length));
  if (Buffer.isBuffer(v)) v.copy(buf, at);
  else buf.write(String(v), at, length, 'utf8');
  return at + length;
}

/** One record, as kafkajs's `Record()` encodes it, in a buffer of exactly its size. */
export function encodeRecord(
  { offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }: RecordInput,
  prototype: object = Object.prototype,
): EncoderLike {
  const names: string[] = [];
  const values: Bytes[] = [];
  for (const name of Object.keys(headers)) {
    const h = headers[name];
    if (Array.isArray(h)) {
      for (const v of h) {
        names.push(name);
        values.push(v);
      }
    } else {
      names.push(name);
      values.push(h);
    }
  }
  const keyLength = lengthOf(key);
  const valueLength = lengthOf(value);
  const lengths = new Array<number>(names.length * 2);
  let body =
    1 +
    sizeOfUnsignedVarint(zigZag64(timestampDelta)) +
    sizeOfUnsignedVarint(zigZag32(offsetDelta)) +
    fieldSize(keyLength) +
    fieldSize(valueLength) +
    sizeOfUnsignedVarint(zigZag32(names.length));
  for (let i = 0; i < names.length; i++) {
    lengths[2 * i] = Buffer.byteLength(names[i]!);
    lengths[2 * i + 1] = lengthOf(values[i]);
    body += fieldSize(lengths[2 * i]!) + fieldSize(lengths[2 * i + 1]!);
  }
  const total = sizeOfUnsignedVarint(zigZag32(body)) + body;
  const buf = Buffer.allocUnsafe(total);
  let at = writeUnsignedVarint(buf, 0, zigZag32(body));
  buf[at++] = 0; // attributes: none used
  at = writeUnsignedVarint(buf, at, zigZag64(timestampDelta));
  at = writeUnsignedVarint(buf, at, zigZag32(offsetDelta));
  at = writeField(buf, at, key, keyLength);
  at = writeField(buf, at, value, valueLength);
  at = writeUnsignedVarint(buf, at, zigZag32(names.length));
  for (let i = 0; i < names.length; i++) {
    at = writeField(buf, at, names[i]!, lengths[2 * i]!);
    at = writeField(buf, at, values[i], lengths[2 * i + 1]!);
  }
  const encoder = Object.create(prototype) as EncoderLike;
  encoder.buf = buf;
  encoder.offset = at;
  return encoder;
}

let installed = false;

/**
 * Makes kafkajs use encodeRecord() for every produce request of this process. Returns false (and
 * changes nothing) when that cannot be done safely; call it before the first produce.
 */
export function installFastRecordEncoder(): boolean {
  if (installed) return true;
  try {
    const version = (require('kafkajs/package.json') as { version: string }).version;
    if (!/^2\.2\./.test(version)) return false;
    const requestPath = require.resolve(REQUEST_MODULE);
    if (require.cache[requestPath]) return false; // already bound to kafkajs's own encoder
    const recordPath = require.resolve(RECORD_MODULE);
    require(recordPath);
    const cached = require.cache[recordPath];
    if (!cached) return false;
    // RecordBatch checks Buffer.isBuffer(record.buf) and reads record.buffer (an Encoder getter).
    const prototype = (require(ENCODER_MODULE) as { prototype: object }).prototype;
    cached.exports = (input: RecordInput) => encodeRecord(input, prototype);
    installed = true;
    return true;
  } catch {
    return false;
  }
}
