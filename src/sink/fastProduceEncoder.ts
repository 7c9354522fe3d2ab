/**
 * A byte-identical, single-pass replacement for the body of kafkajs 2.2's produce request (v3, which
 * v4-v7 reuse): the relay's per-record hot path on the publishing thread.
 *
 * Why: kafkajs builds a request through nested Encoders. Each record takes a 512-byte zero-filled
 * buffer, one more per header, a Buffer per varint and Long objects for its timestamp delta (~25
 * allocations with the relay's six headers), and every level above (record batch, its framing, the
 * partition, the topic, the request) copies the whole payload into a new zero-filled buffer again.
 * Profiles of the relay show that work and its garbage as the largest share of the publishing thread.
 * This encoder sizes the whole request body first and writes it into one buffer: each value is copied
 * once, and the batch CRC-32C is computed in place, eight bytes per step.
 *
 * Where it applies: the relay's requests — no compression, records with string or Buffer keys, values
 * and headers, and per partition either no message timestamps or every message stamped with a decimal
 * string of one length (what the relay sends: KAFKA_RECORD_TIMESTAMP=event). Anything else goes through kafkajs's own encoder unchanged.
 * install() swaps the request module in kafkajs's CommonJS module cache before the first produce
 * (the request modules load lazily), and refuses — changing nothing — if they are already loaded or
 * kafkajs is not the 2.2 line this was checked against. Unit tests compare both encoders byte for byte.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Bytes = Buffer | string | null | undefined;
type HeaderValue = Bytes | Bytes[];

export interface ProduceMessage {
  key?: Bytes;
  value?: Bytes;
  headers?: Record<string, HeaderValue>;
  timestamp?: unknown;
  partition?: number;
}

export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: {
    topic: string;
    partitions: { partition: number; firstSequence?: number; messages: ProduceMessage[] }[];
  }[];
}

/** What kafkajs reads from an encoded payload: an Encoder with `buf` and `offset`. */
interface EncoderLike {
  buf: Buffer;
  offset: number;
}

type RequestFactory = (args: ProduceRequestArgs) => { encode: () => Promise<unknown> };

const V3_REQUEST = 'kafkajs/src/protocol/requests/produce/v3/request';
const LATER_REQUESTS = [4, 5, 6, 7].map((v) => `kafkajs/src/protocol/requests/produce/v${v}/request`);
const ENCODER = 'kafkajs/src/protocol/encoder';

const MAGIC_BYTE = 2;
const TRANSACTIONAL_FLAG = 16;
/** partitionLeaderEpoch, magic, crc */
const BATCH_PREFIX = 4 + 1 + 4;
/** attributes, lastOffsetDelta, firstTimestamp, maxTimestamp, producerId, producerEpoch, firstSequence, record count */
const BATCH_BODY_HEADER = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

// ------------------------------------------------------------------------------------------ CRC-32C

/** CRC-32C (Castagnoli, reflected 0x82F63B78), slicing by 8. */
const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++)
    for (let k = 1; k < 8; k++)
      t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  return t;
})();

export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLE;
  let crc = -1;
  let i = start;
  for (const end8 = start + ((end - start) & ~7); i < end8; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ crc;
    const b = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^
      t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

// ------------------------------------------------------------------------------------------ varints

const zigZag32 = (v: number): number => ((v << 1) ^ (v >> 31)) >>> 0;

function varintSize(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[at++] = u;
  return at;
}

/** Size of a zig-zag varlong of a non-negative value below 2^52 (arithmetic: beyond 32 bits). */
function varlongSize(nonNegative: number): number {
  let u = nonNegative * 2;
  let n = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 0x80);
    n += 1;
  }
  return n;
}

function writeVarlong(buf: Buffer, at: number, nonNegative: number): number {
  let u = nonNegative * 2;
  while (u >= 0x80) {
    buf[at++] = (u % 0x80) | 0x80;
    u = Math.floor(u / 0x80);
  }
  buf[at++] = u;
  return at;
}

const byteLength = (v: Buffer | string): number => (typeof v === 'string' ? Buffer.byteLength(v) : v.length);

/** A nullable bytes field: zig-zag varint length (-1 for null) and the bytes. */
function fieldSize(length: number): number {
  return length < 0 ? 1 : varintSize(zigZag32(length)) + length;
}

function writeField(buf: Buffer, at: number, v: Bytes, length: number): number {
  if (length < 0) return writeVarint(buf, at, zigZag32(-1));
  at = writeVarint(buf, at, zigZag32(length));
  if (typeof v === 'string') buf.write(v, at, length, 'utf8');
  else (v as Buffer).copy(buf, at);
  return at + length;
}

// ------------------------------------------------------------------------------------------ records

/**
 * A record's layout (Kafka record format v2): length varint, attributes, timestamp delta varlong,
 * offset delta varint, key, value, headers. The timestamp delta is never negative on the fast path
 * (it is measured from the batch's smallest timestamp).
 */
class RecordLayout {
  readonly names: string[] = [];
  readonly values: (Buffer | string)[] = [];
  readonly lengths: number[] = [];
  readonly keyLength: number;
  readonly valueLength: number;
  readonly bodySize: number;
  readonly size: number;

  constructor(
    readonly message: ProduceMessage,
    readonly offsetDelta: number,
    readonly timestampDelta: number,
  ) {
    const headers = message.headers ?? {};
    for (const name of Object.keys(headers)) {
      const h = headers[name];
      for (const v of Array.isArray(h) ? h : [h]) {
        this.names.push(name);
        this.values.push(v as Buffer | string);
      }
    }
    this.keyLength = lengthOf(message.key);
    this.valueLength = lengthOf(message.value);
    let body =
      1 + // attributes
      varlongSize(timestampDelta) +
      varintSize(zigZag32(offsetDelta)) +
      fieldSize(this.keyLength) +
      fieldSize(this.valueLength) +
      varintSize(zigZag32(this.names.length));
    for (let i = 0; i < this.names.length; i++) {
      const nameLength = Buffer.byteLength(this.names[i]!);
      const valueLength = byteLength(this.values[i]!);
      this.lengths.push(nameLength, valueLength);
      body += fieldSize(nameLength) + fieldSize(valueLength);
    }
    this.bodySize = body;
    this.size = varintSize(zigZag32(body)) + body;
  }

  write(buf: Buffer, at: number): number {
    at = writeVarint(buf, at, zigZag32(this.bodySize));
    buf[at++] = 0; // attributes
    at = writeVarlong(buf, at, this.timestampDelta);
    at = writeVarint(buf, at, zigZag32(this.offsetDelta));
    at = writeField(buf, at, this.message.key, this.keyLength);
    at = writeField(buf, at, this.message.value, this.valueLength);
    at = writeVarint(buf, at, zigZag32(this.names.length));
    for (let i = 0; i < this.names.length; i++) {
      at = writeField(buf, at, this.names[i]!, this.lengths[2 * i]!);
      at = writeField(buf, at, this.values[i]!, this.lengths[2 * i + 1]!);
    }
    return at;
  }
}

function lengthOf(v: Bytes): number {
  return v === null || v === undefined ? -1 : byteLength(v);
}

// ------------------------------------------------------------------------------------------ request

/** True when encodeProduceRequest() produces what kafkajs would; otherwise kafkajs encodes. */
export function fastPathApplies(args: ProduceRequestArgs): boolean {
  if (args.compression) return false;
  for (const t of args.topicData)
    for (const p of t.partitions) {
      if (p.messages.length === 0) return false;
      if (!timestampsApply(p.messages)) return false;
      for (const m of p.messages) {
        if (!isBytes(m.key, true) || !isBytes(m.value, true)) return false;
        const headers = m.headers ?? {};
        for (const name of Object.keys(headers)) {
          const h = headers[name];
          if (!(Array.isArray(h) ? h.every((v) => isBytes(v, false)) : isBytes(h, false))) return false;
        }
      }
    }
  return true;
}

/** Longest timestamp string taken: below 2^52, so deltas and their zig-zag stay exact in a double. */
const MAX_TIMESTAMP_DIGITS = 15;

/**
 * kafkajs sorts a batch's timestamps as strings and subtracts them as numbers; both agree (and no
 * delta is negative) when every message has a decimal timestamp of one length, or none has any.
 */
function timestampsApply(messages: ProduceMessage[]): boolean {
  const first = messages[0]?.timestamp;
  if (first === undefined || first === null) return messages.every((m) => m.timestamp == null);
  if (typeof first !== 'string') return false;
  const length = first.length;
  if (length === 0 || length > MAX_TIMESTAMP_DIGITS) return false;
  return messages.every(
    (m) => typeof m.timestamp === 'string' && m.timestamp.length === length && /^\d+$/.test(m.timestamp),
  );
}

/** The batch's first (smallest) and max timestamps; the clock when its messages carry none. */
function batchTimes(
  messages: ProduceMessage[],
  now: number,
): { first: number; max: number; stamped: boolean } {
  if (messages[0]?.timestamp == null) return { first: now, max: now, stamped: false };
  let first = Infinity;
  let max = -Infinity;
  for (const m of messages) {
    const t = Number(m.timestamp);
    if (t < first) first = t;
    if (t > max) max = t;
  }
  return { first, max, stamped: true };
}

function isBytes(v: unknown, nullable: boolean): boolean {
  return typeof v === 'string' || Buffer.isBuffer(v) || (nullable && (v === null || v === undefined));
}

function int64(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { value?: unknown }).value === 'bigint')
    return (value as { value: bigint }).value;
  return BigInt(value as number | string);
}

/** The produce request body (v3 layout) kafkajs would encode for `args`, in one buffer. */
export function encodeProduceRequest(args: ProduceRequestArgs, now = Date.now()): Buffer {
  const transactionalId = args.transactionalId ?? null;
  const producerId = BigInt.asIntN(64, int64(args.producerId ?? -1));
  const producerEpoch = args.producerEpoch ?? 0;
  const attributes = transactionalId ? TRANSACTIONAL_FLAG : 0;
  const times = args.topicData.map((t) => t.partitions.map((p) => batchTimes(p.messages, now)));
  const layouts = args.topicData.map((t, ti) =>
    t.partitions.map((p, pi) => {
      const { first, stamped } = times[ti]![pi]!;
      return p.messages.map((m, i) => new RecordLayout(m, i, stamped ? Number(m.timestamp) - first : 0));
    }),
  );
  let size = (transactionalId === null ? 2 : 2 + Buffer.byteLength(transactionalId)) + 2 + 4 + 4;
  args.topicData.forEach((t, ti) => {
    size += 2 + Buffer.byteLength(t.topic) + 4;
    for (const records of layouts[ti]!) {
      size += 4 + 4 + 8 + 4 + BATCH_PREFIX + BATCH_BODY_HEADER;
      for (const r of records) size += r.size;
    }
  });
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  if (transactionalId === null) at = buf.writeInt16BE(-1, at);
  else {
    at = buf.writeInt16BE(Buffer.byteLength(transactionalId), at);
    at += buf.write(transactionalId, at, 'utf8');
  }
  at = buf.writeInt16BE(args.acks, at);
  at = buf.writeInt32BE(args.timeout, at);
  at = buf.writeInt32BE(args.topicData.length, at);
  args.topicData.forEach((t, ti) => {
    at = buf.writeInt16BE(Buffer.byteLength(t.topic), at);
    at += buf.write(t.topic, at, 'utf8');
    at = buf.writeInt32BE(t.partitions.length, at);
    t.partitions.forEach((p, pi) => {
      const records = layouts[ti]![pi]!;
      let batchLength = BATCH_PREFIX + BATCH_BODY_HEADER;
      for (const r of records) batchLength += r.size;
      at = buf.writeInt32BE(p.partition, at);
      at = buf.writeInt32BE(8 + 4 + batchLength, at); // the record set's size
      at = buf.writeBigInt64BE(0n, at); // first offset
      at = buf.writeInt32BE(batchLength, at);
      at = buf.writeInt32BE(0, at); // partition leader epoch
      at = buf.writeInt8(MAGIC_BYTE, at);
      const crcAt = at;
      at += 4;
      const bodyStart = at;
      at = buf.writeInt16BE(attributes, at);
      at = buf.writeInt32BE(records.length - 1, at); // last offset delta
      const { first, max } = times[ti]![pi]!;
      at = buf.writeBigInt64BE(BigInt(first), at); // first timestamp
      at = buf.writeBigInt64BE(BigInt(max), at); // max timestamp
      at = buf.writeBigInt64BE(producerId, at);
      at = buf.writeInt16BE(producerEpoch, at);
      at = buf.writeInt32BE(p.firstSequence ?? 0, at);
      at = buf.writeInt32BE(records.length, at);
      for (const r of records) at = r.write(buf, at);
      buf.writeUInt32BE(crc32c(buf, bodyStart, at), crcAt);
    });
  });
  if (at !== size) throw new Error(`produce request encoded to ${at} bytes, ${size} expected`);
  return buf;
}

// ------------------------------------------------------------------------------------------ install

let installed = false;

/**
 * Makes kafkajs encode this process's produce requests with encodeProduceRequest() where it applies.
 * Returns false (changing nothing) when that cannot be done safely; call it before the first produce.
 */
export function installFastProduceEncoder(): boolean {
  if (installed) return true;
  try {
    const version = (require('kafkajs/package.json') as { version: string }).version;
    if (!/^2\.2\./.test(version)) return false;
    const requestPath = require.resolve(V3_REQUEST);
    if ([requestPath, ...LATER_REQUESTS.map((m) => require.resolve(m))].some((p) => require.cache[p]))
      return false;
    const original = require(requestPath) as RequestFactory;
    const cached = require.cache[requestPath];
    if (!cached) return false;
    const encoderPrototype = (require(ENCODER) as { prototype: object }).prototype;
    const fast: RequestFactory = (args) => {
      const request = original(args);
      if (!fastPathApplies(args)) return request;
      return {
        ...request,
        encode: () => {
          const buf = encodeProduceRequest(args);
          const encoder = Object.create(encoderPrototype) as EncoderLike;
          encoder.buf = buf;
          encoder.offset = buf.length;
          return Promise.resolve(encoder);
        },
      };
    };
    cached.exports = fast;
    installed = true;
    return true;
  } catch {
    return false;
  }
}
