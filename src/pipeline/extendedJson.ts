/**
 * Extended JSON v2 text of a decoded change event, exactly as `BSON.EJSON.stringify(value, { relaxed })`
 * writes it, in one pass. The library first builds a parallel tree of Extended JSON objects and then
 * hands it to JSON.stringify; for the relay, which serialises every event it reads, that tree is the
 * largest source of garbage on the reader thread. This writer emits the text directly for what change
 * events are made of (plain documents, arrays, strings, numbers, booleans, null, dates, ObjectIds,
 * Timestamps) and hands any other BSON value to the library, so its text is the library's by
 * construction. A unit test compares both on random documents of every BSON type. Documents the source
 * kept as raw BSON (the event's `fullDocument`, `fullDocumentBeforeChange`) are written from their bytes
 * by rawExtendedJson.ts, held to the same oracle.
 */
import { BSON } from 'mongodb';
import { RawDocument } from '../source/rawEvent.js';
import { dateText, numberText } from './extendedJsonScalars.js';
import { rawDocumentText } from './rawExtendedJson.js';

export function stringifyExtendedJson(value: unknown, relaxed: boolean): string {
  return write(value, relaxed);
}

function write(v: unknown, relaxed: boolean): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return numberText(v, relaxed);
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
  if (o instanceof Date) return dateText(o, relaxed);
  // A document the source kept as raw BSON (src/source/rawEvent.ts): written straight from its bytes.
  if (o instanceof RawDocument) return rawDocumentText(o.bytes, relaxed);
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
