/**
 * Oracle test of the raw-BSON path (src/source/rawEvent.ts + src/pipeline/rawExtendedJson.ts): a change
 * event read as bytes, decoded except for its images, then written with the images straight from their
 * bytes, must give byte for byte the text of the path it replaces: the driver's decoding of the whole
 * event (bson's defaults) and `BSON.EJSON.stringify`. Relaxed and canonical, on
 *  - every valid case of the BSON specification's corpus (test/fixtures/bson-corpus) as `fullDocument`
 *    and as `fullDocumentBeforeChange`, canonical and degenerate bytes;
 *  - every decode-error case of the corpus: the old path throws a BSONError, so the new one must too
 *    (at decoding or at writing), never write text;
 *  - seeded random documents of every BSON type, with the keys that change meaning when decoded
 *    (`$…`, integer-like, duplicates, `__proto__`, non-ASCII), and the same documents with random bytes
 *    changed (differential fuzzing: both paths fail, or both write the same text).
 * The seed is printed; TEST_SEED replays it.
 */
import { expect } from 'chai';
import { BSON } from 'mongodb';
import { stringifyExtendedJson } from '../../../src/pipeline/extendedJson.js';
import { rawDocumentText } from '../../../src/pipeline/rawExtendedJson.js';
import { EVENT_DECODING, RawDocument, decodeChangeEvent } from '../../../src/source/rawEvent.js';
import { classifyUnreadable } from '../../../src/source/unreadableEvent.js';
import { corpusFiles } from '../../support/bsonCorpus.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';

const SEED = chooseSeed();

/** BSON.serialize's bytes as a Buffer (searchable, patchable). */
const ser = (doc: BSON.Document): Buffer => Buffer.from(BSON.serialize(doc));

/** A change event's bytes with `image` (raw BSON) as the value of `field`, among the usual fields. */
function eventBytes(image: Uint8Array, field = 'fullDocument'): Buffer {
  const before = BSON.serialize({
    _id: { _data: '8263A1B2C3000000012B0229296E04' },
    operationType: 'replace',
    clusterTime: new BSON.Timestamp({ t: 1795616619, i: 1 }),
    wallTime: new Date('2026-11-25T14:23:39.615Z'),
  });
  const after = BSON.serialize({ ns: { db: 'shop', coll: 'orders' }, documentKey: { _id: 7 } });
  const element = Buffer.concat([Buffer.from([0x03]), Buffer.from(`${field}\0`, 'latin1'), image]);
  const body = Buffer.concat([before.subarray(4, -1), element, after.subarray(4, -1)]);
  const out = Buffer.alloc(body.length + 5);
  out.writeInt32LE(out.length, 0);
  body.copy(out, 4);
  return out;
}

type Outcome = { text: string } | { error: unknown };

function attempt(f: () => string): Outcome {
  try {
    return { text: f() };
  } catch (error) {
    return { error };
  }
}

/**
 * The path the raw reader replaces: the driver decodes the whole event (with regular expressions kept
 * as stored, EVENT_DECODING), the writer writes it.
 */
const oldPath = (bytes: Buffer, relaxed: boolean): Outcome =>
  attempt(() => stringifyExtendedJson(BSON.deserialize(bytes, EVENT_DECODING), relaxed));
const newPath = (bytes: Buffer, relaxed: boolean): Outcome =>
  attempt(() => stringifyExtendedJson(decodeChangeEvent(bytes), relaxed));

function expectSame(bytes: Buffer, what: string): void {
  for (const relaxed of [true, false]) {
    const was = oldPath(bytes, relaxed);
    const now = newPath(bytes, relaxed);
    if ('error' in was) {
      expect(
        now,
        `${what} (relaxed: ${relaxed}): the old path failed, the new one wrote text`,
      ).to.have.property('error');
      const error = (now as { error: unknown }).error;
      expect(
        BSON.BSONError.isBSONError(error),
        `${what}: a BSONError, not ${String(error)}; the old path: ${String(was.error)}`,
      ).to.equal(true);
    } else {
      expect(now, `${what} (relaxed: ${relaxed})`).to.deep.equal(was);
    }
  }
}

describe('raw-BSON change events against the driver-decoded path (oracle: bson deserialize + EJSON.stringify)', () => {
  it('keeps the images raw, in their place, and decodes the rest as the driver does', () => {
    const image = BSON.serialize({ _id: 7, name: 'ü', at: new Date(0) });
    const event = decodeChangeEvent(eventBytes(image));
    expect(Object.keys(event)).to.deep.equal([
      '_id',
      'operationType',
      'clusterTime',
      'wallTime',
      'fullDocument',
      'ns',
      'documentKey',
    ]);
    expect(event.fullDocument).to.be.instanceOf(RawDocument);
    expect((event.fullDocument as RawDocument).decode()).to.deep.equal(BSON.deserialize(image));
    expect(event.documentKey).to.deep.equal({ _id: 7 });
    expect(event.clusterTime).to.be.instanceOf(BSON.Timestamp);
    const whole = BSON.deserialize(eventBytes(image), EVENT_DECODING);
    expect({ ...event, fullDocument: (event.fullDocument as RawDocument).decode() }).to.deep.equal(whole);
  });

  for (const { name, corpus } of corpusFiles) {
    if (!corpus.valid?.length && !corpus.decodeErrors?.length) continue;
    describe(`${name}: ${corpus.description}`, () => {
      for (const c of corpus.valid ?? []) {
        it(`valid: ${c.description}`, () => {
          for (const [form, hex] of [
            ['canonical_bson', c.canonical_bson],
            ['degenerate_bson', c.degenerate_bson],
          ] as const) {
            if (!hex) continue;
            const image = Buffer.from(hex, 'hex');
            for (const field of ['fullDocument', 'fullDocumentBeforeChange'])
              expectSame(eventBytes(image, field), `${name} "${c.description}" ${form} as ${field}`);
            for (const relaxed of [true, false])
              expect(rawDocumentText(image, relaxed), `${name} "${c.description}" ${form} alone`).to.equal(
                BSON.EJSON.stringify(new RawDocument(image).decode(), { relaxed }),
              );
          }
        });
      }
      for (const c of corpus.decodeErrors ?? []) {
        it(`decode error: ${c.description} is a BSONError (the unreadable-event path), never text`, () => {
          const bytes = eventBytes(Buffer.from(c.bson, 'hex'));
          expectSame(bytes, `${name} "${c.description}"`);
          const outcome = newPath(bytes, true);
          expect(outcome).to.have.property('error');
          const images = { fullDocument: 'default', fullDocumentBeforeChange: 'off' } as const;
          expect(classifyUnreadable((outcome as { error: unknown }).error, images)).to.equal('undecodable');
        });
      }
    });
  }

  it('leaves to the library the keys that change meaning when decoded: $, integer-like, __proto__, duplicates', () => {
    // An integer-like key after another one: JS lists it first. BSON.serialize writes JS's order, so
    // the bytes are patched: "x1" becomes "10", "y" becomes "2".
    const integerKeys = ser({ b: 1, x1: 'ten', a: { x: 1, y: 'two' } });
    integerKeys.set(Buffer.from('10', 'latin1'), integerKeys.indexOf(Buffer.from('x1\0', 'latin1')));
    integerKeys[integerKeys.indexOf(Buffer.from('y\0', 'latin1'))] = 0x32;
    const docs: Buffer[] = [
      integerKeys,
      ser({ x: { $id: 1, $ref: 'c', $db: 'd', extra: 1 } }),
      ser({ x: { $ref: 'c', $id: 1 }, y: { $notRef: 1 } }),
      ser(JSON.parse('{"__proto__": {"polluted": 1}, "b": 2}') as BSON.Document),
      ser({ '': 1, 'a.b': 2, ü: 3, '01': 4, '4294967295': 5, '-1': 6 }),
    ];
    // Duplicates: BSON allows them, JS objects cannot hold them (first place, last value).
    const dup = ser({ a: 1, b: { c: 1, d: 2 }, e: 3 });
    dup[dup.indexOf(Buffer.from('e\0', 'latin1'))] = 0x61; // the key "e" becomes "a"
    const nested = ser({ x: { c: 1, d: 2 } });
    nested[nested.indexOf(Buffer.from('d\0', 'latin1'))] = 0x63;
    docs.push(dup, nested);
    for (const [i, doc] of docs.entries()) expectSame(eventBytes(doc), `document ${i}`);
  });

  it("writes a regular expression as MongoDB stored it, also one JS cannot compile (the driver's RegExp threw)", () => {
    const image = ser({ r: new BSON.BSONRegExp('a++/(?i)b', 'ilmsux') });
    expect(() => BSON.deserialize(eventBytes(image)), 'the driver decoding it as a RegExp').to.throw(
      SyntaxError,
    );
    const text = stringifyExtendedJson(decodeChangeEvent(eventBytes(image)), false);
    expect(text).to.contain(
      '"fullDocument":{"r":{"$regularExpression":{"pattern":"a++/(?i)b","options":"ilmsux"}}}',
    );
  });

  it(`matches on seeded random documents, and fails with it on the same documents with bytes changed (seed ${SEED}; TEST_SEED replays)`, () => {
    const rand = new SeededRandom(SEED);
    const r = () => rand.next();
    const int = (n: number) => Math.floor(r() * n);
    const text = () =>
      Array.from({ length: int(24) }, () => {
        const k = r();
        return String.fromCharCode(k < 0.05 ? 0xd800 + int(0x800) : k < 0.15 ? int(0x10000) : 32 + int(90));
      }).join('');
    const cstring = () => text().replace(/\0/g, '');
    const key = (): string => {
      const k = r();
      if (k < 0.05) return `$${cstring()}`;
      if (k < 0.1) return String(int(20));
      if (k < 0.12) return '__proto__';
      return cstring() || `k${int(5)}`;
    };
    const scalars: (() => unknown)[] = [
      () => text(),
      () => r() * 1e6 - 5e5,
      () => int(2 ** 31) - 2 ** 30,
      () => [-0, NaN, Infinity, -Infinity, 2 ** 60, 1.0, 0.1][int(7)],
      () => r() < 0.5,
      () => null,
      () => undefined,
      () => new Date(int(2) ? int(2 ** 42) : -int(2 ** 42)),
      () => new Date([253402300799999, 253402300800000, -1, 0, 8.64e15, -8.64e15][int(6)]!),
      () => new BSON.ObjectId(),
      () => new BSON.Timestamp({ t: int(2 ** 32), i: int(2 ** 32) }),
      () => BSON.Long.fromNumber(int(2 ** 53) - 2 ** 52),
      () =>
        BSON.Long.fromString(
          ['9007199254740992', '-9007199254740992', '9007199254740993', '-9223372036854775808'][int(4)]!,
        ),
      () => new BSON.Int32(int(1000)),
      () => new BSON.Double(int(100)),
      () => BSON.Decimal128.fromString(`${int(10000)}.${int(100)}`),
      () => new BSON.Binary(Buffer.from(text()), [0, 2, 3, 4, 5, 6, 8, 0x80][int(8)]),
      () => new BSON.MinKey(),
      () => new BSON.MaxKey(),
      () =>
        new BSON.BSONRegExp(
          cstring().replace(/[\\[\](){}*+?.^$|]/g, '') || 'x',
          ['i', 'msx', 'ilmsux', ''][int(4)],
        ),
      () => new BSON.Code('function () {}'),
      () => new BSON.Code('function () {}', { a: 1 }),
      () => new BSON.DBRef('coll', new BSON.ObjectId(), r() < 0.5 ? 'db' : undefined),
      () => new BSON.BSONSymbol(text()),
    ];
    const value = (depth: number): unknown => {
      const k = r();
      if (depth < 4 && k < 0.15) return Array.from({ length: int(5) }, () => value(depth + 1));
      if (depth < 4 && k < 0.35) return doc(depth + 1);
      return scalars[int(scalars.length)]!();
    };
    const doc = (depth: number): Record<string, unknown> => {
      const d: Record<string, unknown> = {};
      for (let n = int(7); n > 0; n--)
        Object.defineProperty(d, key(), {
          value: value(depth),
          enumerable: true,
          configurable: true,
          writable: true,
        });
      return d;
    };
    let changed = 0;
    let failedBoth = 0;
    for (let i = 0; i < 400; i++) {
      const image = BSON.serialize(doc(0), { ignoreUndefined: false });
      expectSame(eventBytes(image), `document ${i}`);
      for (let m = 0; m < 4; m++) {
        const bytes = eventBytes(image);
        const flips = 1 + int(3);
        for (let f = 0; f < flips; f++) bytes[int(bytes.length)] = int(256);
        expectSame(bytes, `document ${i}, mutation ${m}`);
        changed += 1;
        if ('error' in oldPath(bytes, true)) failedBoth += 1;
      }
    }
    // The mutations reach both outcomes: some still decode, many do not.
    expect(failedBoth).to.be.within(1, changed - 1);
  });
});
