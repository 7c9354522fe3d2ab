/**
 * Extended JSON v2 text written straight from the bytes of a raw BSON document, equal byte for byte to
 * decoding it as the relay decodes events (src/source/rawEvent.ts EVENT_DECODING: the driver's defaults,
 * regular expressions kept as stored) followed by `BSON.EJSON.stringify`. Reading the change stream as
 * raw BSON and writing the images from their bytes skips building a JS object tree per event, which with
 * its garbage collection was most of the reader thread's time.
 *
 * The fast path covers what documents are mostly made of: documents, arrays, strings, doubles, int32,
 * int64 within ±2^53 (the driver promotes those to numbers), booleans, null, dates, ObjectIds and
 * Timestamps, with keys that cannot change meaning when decoded. Anything else in a document (another
 * BSON type, a key starting with `$` (a DBRef?), an integer-like key (JS objects list those first), a
 * duplicate key, `__proto__`, a string or key that is not plain UTF-8, a length that does not add up)
 * sends that one document or array to the library: it is decoded in place (as the value of a wrapper
 * document, so a DBRef or an array decodes exactly as it would inside its parent) and written by
 * `EJSON.stringify`. The library therefore decides every case the fast path does not, including which
 * bytes are an error: a BSONError from it is the relay's unreadable-event path, as when the driver
 * failed to decode. test/unit/relay/rawExtendedJson.test.ts holds both to the BSON corpus and to seeded
 * random documents.
 */
import { BSON } from 'mongodb';
import { asBuffer, decodeInPlace } from '../source/rawEvent.js';
import { dateText, numberText } from './extendedJsonScalars.js';

const DOUBLE = 0x01;
const STRING = 0x02;
const DOCUMENT = 0x03;
const ARRAY = 0x04;
const OBJECT_ID = 0x07;
const BOOLEAN = 0x08;
const DATE = 0x09;
const NULL = 0x0a;
const INT32 = 0x10;
const TIMESTAMP = 0x11;
const INT64 = 0x12;

/** An int64 whose high word is in this range is within ±2^53: the driver decodes it as a number. */
const SAFE_HIGH_MIN = -0x200000;
const SAFE_HIGH_MAX = 0x1fffff;
const TWO_POW_32 = 4294967296;
/** Dates beyond ±8.64e15 ms are invalid in JS: the library's text for them is kept. */
const MAX_DATE_MS = 8.64e15;
/** Keys are compared pairwise up to this many per document, then with a set. */
const LINEAR_KEY_CHECK = 16;

/** Where the value just written ended: set by every value writer before it returns. */
let next = 0;

/** The text of `bytes`, one whole BSON document, as the value of a change event's field. */
export function rawDocumentText(bytes: Uint8Array, relaxed: boolean): string {
  const buf = asBuffer(bytes);
  if (buf.length >= 5 && buf.readInt32LE(0) === buf.length && buf[buf.length - 1] === 0) {
    const text = documentText(buf, 0, buf.length, relaxed);
    if (text !== null) return text;
  }
  return libraryText(DOCUMENT, buf, 0, buf.length, relaxed);
}

/** A nested document or array of `size` bytes at `start`, by the library, decoded in place. */
function libraryText(type: number, buf: Buffer, start: number, size: number, relaxed: boolean): string {
  const value = decodeInPlace(type, buf.subarray(start, start + size));
  return BSON.EJSON.stringify(value as BSON.Document, { relaxed });
}

/** A document whose length (already checked) ends at `end`; null if the library must write it. */
function documentText(buf: Buffer, start: number, end: number, relaxed: boolean): string | null {
  const last = end - 1;
  let i = start + 4;
  let out = '{';
  let keys: string[] | null = null;
  let keySet: Set<string> | null = null;
  while (i < last) {
    const type = buf[i]!;
    const entry = keyAt(buf, i + 1, last);
    if (entry === null) return null;
    const key = entry.key;
    // Duplicates: the decoder keeps the first position and the last value. Rare: the library decides.
    if (keySet !== null) {
      if (keySet.has(key)) return null;
      keySet.add(key);
    } else if (keys === null) {
      keys = [key];
    } else {
      if (keys.includes(key)) return null;
      keys.push(key);
      if (keys.length > LINEAR_KEY_CHECK) keySet = new Set(keys);
    }
    const value = valueText(type, buf, keyNext, last, relaxed);
    if (value === null) return null;
    out += out.length === 1 ? `${entry.json}:${value}` : `,${entry.json}:${value}`;
    i = next;
  }
  return i === last ? `${out}}` : null;
}

/** An array (length checked) ending at `end`; its keys are ignored, as the decoder ignores them. */
function arrayText(buf: Buffer, start: number, end: number, relaxed: boolean): string | null {
  const last = end - 1;
  let i = start + 4;
  let out = '[';
  while (i < last) {
    const type = buf[i]!;
    let k = i + 1;
    while (k < last && buf[k] !== 0) k++;
    if (k >= last) return null;
    const value = valueText(type, buf, k + 1, last, relaxed);
    if (value === null) return null;
    out += out.length === 1 ? value : `,${value}`;
    i = next;
  }
  return i === last ? `${out}]` : null;
}

interface KeyEntry {
  bytes: Buffer;
  key: string;
  /** The key as a JSON string, quotes included. */
  json: string;
}

/**
 * Keys repeat from document to document: each distinct key's text is made once and found again by a
 * hash of its bytes (checked byte for byte). Bounded: the cache starts over when full.
 */
const keyCache = new Map<number, KeyEntry>();
const KEY_CACHE_LIMIT = 4096;
const CACHED_KEY_BYTES = 64;
/** Where the value after the key just read starts (after the key's NUL): set by keyAt. */
let keyNext = 0;

/**
 * The key (a C string) at `start`, ending before `last`, if the decoder turns it into the same JS
 * property in the same place: not `$…` (DBRef detection), not integer-like (JS lists those first), not
 * `__proto__`, plain UTF-8. Null otherwise, or when it does not end in bounds. Sets `keyNext`.
 */
function keyAt(buf: Buffer, start: number, last: number): KeyEntry | null {
  let hash = 0x811c9dc5;
  let i = start;
  for (; i < last; i++) {
    const c = buf[i]!;
    if (c === 0) break;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (i >= last) return null;
  keyNext = i + 1;
  const length = i - start;
  const cached = length <= CACHED_KEY_BYTES ? keyCache.get(hash) : undefined;
  if (cached !== undefined && cached.bytes.length === length && sameBytes(cached.bytes, buf, start))
    return cached;
  const first = buf[start];
  if (first === 0x24) return null; // "$"
  const key = text(buf, start, i);
  if (key === null || key === '__proto__') return null;
  if (first !== undefined && first >= 0x30 && first <= 0x39 && /^(0|[1-9][0-9]*)$/.test(key)) return null;
  const entry: KeyEntry = { bytes: Buffer.from(buf.subarray(start, i)), key, json: JSON.stringify(key) };
  if (length <= CACHED_KEY_BYTES) {
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
    keyCache.set(hash, entry);
  }
  return entry;
}

function sameBytes(a: Buffer, buf: Buffer, start: number): boolean {
  for (let k = 0; k < a.length; k++) if (a[k] !== buf[start + k]) return false;
  return true;
}

/** UTF-8 text, or null where it is not plain UTF-8 (U+FFFD: invalid bytes, or a real U+FFFD). */
function text(buf: Buffer, start: number, end: number): string | null {
  if (end - start <= 16) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c > 0x7f) return decoded(buf, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoded(buf, start, end);
}

function decoded(buf: Buffer, start: number, end: number): string | null {
  const s = buf.toString('utf8', start, end);
  return s.includes('\uFFFD') ? null : s;
}

/** The value of `type` at `i`, which must end by `limit`; sets `next`. Null: the library writes its document. */
function valueText(type: number, buf: Buffer, i: number, limit: number, relaxed: boolean): string | null {
  switch (type) {
    case DOUBLE:
      if (i + 8 > limit) return null;
      next = i + 8;
      return numberText(buf.readDoubleLE(i), relaxed);
    case STRING: {
      if (i + 4 > limit) return null;
      const size = buf.readInt32LE(i);
      const stop = i + 4 + size;
      if (size < 1 || stop > limit || buf[stop - 1] !== 0) return null;
      const s = text(buf, i + 4, stop - 1);
      if (s === null) return null;
      next = stop;
      return JSON.stringify(s);
    }
    case DOCUMENT:
    case ARRAY: {
      if (i + 4 > limit) return null;
      const size = buf.readInt32LE(i);
      const stop = i + size;
      if (size < 5 || stop > limit || buf[stop - 1] !== 0) return null;
      const written =
        type === DOCUMENT ? documentText(buf, i, stop, relaxed) : arrayText(buf, i, stop, relaxed);
      next = stop;
      return written ?? libraryText(type, buf, i, size, relaxed);
    }
    case OBJECT_ID:
      if (i + 12 > limit) return null;
      next = i + 12;
      return `{"$oid":"${buf.toString('hex', i, i + 12)}"}`;
    case BOOLEAN: {
      if (i + 1 > limit) return null;
      const b = buf[i];
      if (b !== 0 && b !== 1) return null;
      next = i + 1;
      return b === 1 ? 'true' : 'false';
    }
    case DATE: {
      if (i + 8 > limit) return null;
      const high = buf.readInt32LE(i + 4);
      if (high < SAFE_HIGH_MIN || high > SAFE_HIGH_MAX) return null;
      const ms = high * TWO_POW_32 + buf.readUInt32LE(i);
      if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) return null;
      next = i + 8;
      return dateText(new Date(ms), relaxed);
    }
    case NULL:
      next = i;
      return 'null';
    case INT32:
      if (i + 4 > limit) return null;
      next = i + 4;
      return numberText(buf.readInt32LE(i), relaxed);
    case TIMESTAMP:
      if (i + 8 > limit) return null;
      next = i + 8;
      return `{"$timestamp":{"t":${buf.readUInt32LE(i + 4)},"i":${buf.readUInt32LE(i)}}}`;
    case INT64: {
      if (i + 8 > limit) return null;
      const high = buf.readInt32LE(i + 4);
      if (high < SAFE_HIGH_MIN || high > SAFE_HIGH_MAX) return null;
      next = i + 8;
      return numberText(high * TWO_POW_32 + buf.readUInt32LE(i), relaxed);
    }
    default:
      return null;
  }
}
