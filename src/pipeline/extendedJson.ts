/**
 * Extended JSON v2 text of a decoded change event, exactly as `BSON.EJSON.stringify(value, { relaxed })`
 * writes it, in one pass. The library first builds a parallel tree of Extended JSON objects and then
 * hands it to JSON.stringify; for the relay, which serialises every event it reads, that tree is the
 * largest source of garbage on the reader thread. This writer emits the text directly for what change
 * events are made of (plain documents, arrays, strings, numbers, booleans, null, dates, ObjectIds,
 * Timestamps) and hands any other BSON value to the library, so its text is the library's by
 * construction. A unit test compares both on random documents of every BSON type.
 */
import { BSON } from 'mongodb';

/** Dates in this range are written as ISO strings in relaxed mode (the library's rule). */
const LAST_RELAXED_DATE_MS = 253402300800000;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

export function stringifyExtendedJson(value: unknown, relaxed: boolean): string {
  return write(value, relaxed);
}

function write(v: unknown, relaxed: boolean): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return number(v, relaxed);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
      return 'null';
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v)) return array(v, relaxed);
      return object(v, relaxed);
    default:
      return BSON.EJSON.stringify(v as BSON.Document, { relaxed });
  }
}

function number(n: number, relaxed: boolean): string {
  if (relaxed && Number.isFinite(n)) return JSON.stringify(n);
  if (Number.isInteger(n) && !Object.is(n, -0)) {
    if (n >= INT32_MIN && n <= INT32_MAX) return `{"$numberInt":"${n}"}`;
    if (n >= INT64_MIN && n <= INT64_MAX) return `{"$numberLong":"${n}"}`;
  }
  return `{"$numberDouble":"${Object.is(n, -0) ? '-0.0' : String(n)}"}`;
}

/** Values JSON.stringify drops or nulls by position: the library's output for them is kept. */
const unusual = (v: unknown): boolean => typeof v === 'function' || typeof v === 'symbol';

function array(a: unknown[], relaxed: boolean): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) {
    if (unusual(a[i])) return BSON.EJSON.stringify(a, { relaxed });
    if (i > 0) out += ',';
    out += write(a[i], relaxed);
  }
  return `${out}]`;
}

function object(o: object, relaxed: boolean): string {
  const bsontype = (o as { _bsontype?: unknown })._bsontype;
  if (bsontype === 'ObjectId') return `{"$oid":"${(o as BSON.ObjectId).toHexString()}"}`;
  if (bsontype === 'Timestamp') {
    const t = o as BSON.Timestamp;
    return `{"$timestamp":{"t":${t.t},"i":${t.i}}}`;
  }
  if (o instanceof Date) return date(o, relaxed);
  const proto = Object.getPrototypeOf(o) as unknown;
  if (bsontype !== undefined || (proto !== Object.prototype && proto !== null))
    return BSON.EJSON.stringify(o as BSON.Document, { relaxed });
  let out = '{';
  let first = true;
  for (const key of Object.keys(o)) {
    const value = (o as Record<string, unknown>)[key];
    if (unusual(value)) return BSON.EJSON.stringify(o as BSON.Document, { relaxed });
    out += `${first ? '' : ','}${JSON.stringify(key)}:${write(value, relaxed)}`;
    first = false;
  }
  return `${out}}`;
}

function date(d: Date, relaxed: boolean): string {
  const ms = d.getTime();
  if (relaxed && ms > -1 && ms < LAST_RELAXED_DATE_MS) {
    const iso = d.toISOString();
    return `{"$date":"${d.getUTCMilliseconds() !== 0 ? iso : `${iso.slice(0, -5)}Z`}"}`;
  }
  return `{"$date":{"$numberLong":"${String(ms)}"}}`;
}
