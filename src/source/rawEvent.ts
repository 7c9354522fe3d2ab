/**
 * A change event read as raw BSON, decoded except for its images: `fullDocument` and
 * `fullDocumentBeforeChange` stay as their bytes (RawDocument), in their place among the event's
 * fields, and the record writer writes them straight from those bytes (src/pipeline/rawExtendedJson.ts).
 * The rest of the event (the envelope: `_id`, `operationType`, `ns`, `documentKey`, `clusterTime`,
 * `updateDescription`, ...) is small and is decoded as the driver decodes a change event (but for
 * regular expressions: EVENT_DECODING), so everything that reads an event's fields works unchanged.
 *
 * Anything unusual in the event's top level (a type or length this module does not walk) leaves the
 * whole event to the library's decoder, which then decides, errors included, as the driver did.
 */
import { BSON, type Document } from 'mongodb';

const DOCUMENT = 0x03;
const NULL = 0x0a;

/**
 * How events read as raw BSON are decoded: the driver's defaults (promoted numbers, UTF-8 validated),
 * except that a regular expression stays a BSONRegExp with the pattern and options MongoDB stored. As a
 * JS RegExp it lost options (x, l, u), escaped `/`, and a pattern valid for MongoDB (PCRE) but not for
 * JS made the decoder throw a SyntaxError, which stopped the stream on every restart.
 */
export const EVENT_DECODING: BSON.DeserializeOptions = Object.freeze({ bsonRegExp: true });

/** A BSON document kept as its bytes: exactly one document, length prefix to terminating NUL. */
export class RawDocument {
  constructor(readonly bytes: Uint8Array) {}

  /** The document as the driver would have decoded it in place (a nested DBRef stays a DBRef). */
  decode(): Document {
    return decodeInPlace(DOCUMENT, this.bytes) as Document;
  }
}

/**
 * A document (type 0x03) or array (0x04) decoded as the value of a wrapper document's field, so it
 * decodes exactly as it would inside its parent (a DBRef-like document becomes a DBRef, an array an
 * array). Throws the library's BSONError for bytes it cannot decode.
 */
export function decodeInPlace(type: number, bytes: Uint8Array): unknown {
  const size = bytes.byteLength;
  const wrapper = Buffer.allocUnsafe(size + 8);
  wrapper.writeInt32LE(size + 8, 0);
  wrapper[4] = type;
  wrapper[5] = 0x76; // "v"
  wrapper[6] = 0;
  wrapper.set(bytes, 7);
  wrapper[size + 7] = 0;
  return (BSON.deserialize(wrapper, EVENT_DECODING) as { v: unknown }).v;
}

/** `bytes` as a Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The fields kept raw. */
const IMAGE_FIELDS = ['fullDocument', 'fullDocumentBeforeChange'];

interface ImageSpan {
  name: string;
  /** Offset of the element's type byte. */
  typeAt: number;
  valueStart: number;
  valueEnd: number;
}

/**
 * The event in `bytes` (one whole BSON document), decoded (EVENT_DECODING), its images left as
 * RawDocuments. Throws what the library's decoder throws for bytes it cannot decode.
 */
export function decodeChangeEvent(bytes: Uint8Array): Document {
  const buf = asBuffer(bytes);
  const spans = imageSpans(buf);
  if (spans === null || spans.length === 0) return BSON.deserialize(buf, EVENT_DECODING);
  // The envelope: the event with each image replaced by null (same key, same place), so the decoded
  // event keeps the server's field order when the images are put back.
  let removed = 0;
  for (const s of spans) removed += s.valueEnd - s.valueStart;
  const envelope = Buffer.allocUnsafe(buf.length - removed);
  let from = 0;
  let to = 0;
  for (const s of spans) {
    to += buf.copy(envelope, to, from, s.valueStart);
    envelope[to - (s.valueStart - s.typeAt)] = NULL;
    from = s.valueEnd;
  }
  to += buf.copy(envelope, to, from, buf.length);
  envelope.writeInt32LE(to, 0);
  const event = BSON.deserialize(envelope, EVENT_DECODING);
  for (const s of spans) event[s.name] = new RawDocument(buf.subarray(s.valueStart, s.valueEnd));
  return event;
}

/**
 * `event` with its raw images decoded (the same event when it has none), for the writers that work on
 * decoded values (the drop-in formats: src/pipeline/output/).
 */
export function withDecodedImages<T extends Document>(event: T): T {
  let decoded: Document | null = null;
  for (const field of IMAGE_FIELDS) {
    const image: unknown = event[field];
    if (image instanceof RawDocument) (decoded ??= { ...event })[field] = image.decode();
  }
  return (decoded as T | null) ?? event;
}

/** Where the images are, or null when the top level holds something this walk does not know. */
function imageSpans(buf: Buffer): ImageSpan[] | null {
  if (buf.length < 5 || buf.readInt32LE(0) !== buf.length || buf[buf.length - 1] !== 0) return null;
  const last = buf.length - 1;
  const spans: ImageSpan[] = [];
  let i = 4;
  while (i < last) {
    const type = buf[i]!;
    const keyEnd = buf.indexOf(0, i + 1);
    if (keyEnd === -1 || keyEnd >= last) return null;
    const length = valueLength(type, buf, keyEnd + 1, last);
    if (length < 0) return null;
    if (type === DOCUMENT) {
      const name = buf.toString('latin1', i + 1, keyEnd);
      if (IMAGE_FIELDS.includes(name))
        spans.push({ name, typeAt: i, valueStart: keyEnd + 1, valueEnd: keyEnd + 1 + length });
    }
    i = keyEnd + 1 + length;
  }
  return i === last ? spans : null;
}

/** Bytes of a value of `type` at `i` (ending by `limit`), or -1 when unknown or out of bounds. */
function valueLength(type: number, buf: Buffer, i: number, limit: number): number {
  const fits = (n: number): number => (n >= 0 && i + n <= limit ? n : -1);
  const int32At = (at: number): number => (at + 4 <= limit ? buf.readInt32LE(at) : -1);
  switch (type) {
    case 0x01: // double
    case 0x09: // date
    case 0x11: // timestamp
    case 0x12: // int64
      return fits(8);
    case 0x02: // string
    case 0x0d: // code
    case 0x0e: {
      // symbol
      const n = int32At(i);
      return n < 1 ? -1 : fits(4 + n);
    }
    case 0x03: // document
    case 0x04: // array
    case 0x0f: {
      // code with scope
      const n = int32At(i);
      return n < 5 ? -1 : fits(n);
    }
    case 0x05: {
      // binary
      const n = int32At(i);
      return n < 0 ? -1 : fits(5 + n);
    }
    case 0x06: // undefined
    case 0x0a: // null
    case 0x7f: // max key
    case 0xff: // min key
      return 0;
    case 0x07: // ObjectId
      return fits(12);
    case 0x08: // boolean
      return fits(1);
    case 0x0b: {
      // regular expression: two C strings
      const patternEnd = buf.indexOf(0, i);
      const optionsEnd = patternEnd === -1 ? -1 : buf.indexOf(0, patternEnd + 1);
      return optionsEnd === -1 ? -1 : fits(optionsEnd + 1 - i);
    }
    case 0x0c: {
      // DBPointer: string + ObjectId
      const n = int32At(i);
      return n < 1 ? -1 : fits(4 + n + 12);
    }
    case 0x10: // int32
      return fits(4);
    case 0x13: // decimal128
      return fits(16);
    default:
      return -1;
  }
}
