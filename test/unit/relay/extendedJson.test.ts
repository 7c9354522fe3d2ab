import { expect } from 'chai';
import { BSON } from 'mongodb';
import { stringifyExtendedJson } from '../../../src/pipeline/extendedJson.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';

const SEED = chooseSeed();

/** A replayable [0, 1) generator (test/support/random.ts). */
function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

const same = (value: unknown, what: string): void => {
  for (const relaxed of [true, false])
    expect(stringifyExtendedJson(value, relaxed), `${what}, relaxed: ${relaxed}`).to.equal(
      BSON.EJSON.stringify(value as BSON.Document, { relaxed }),
    );
};

describe('stringifyExtendedJson (the record value)', () => {
  it('writes a change event exactly as BSON.EJSON.stringify does', () => {
    same(
      {
        _id: { _data: '826B06EF6B0000000180' },
        operationType: 'update',
        clusterTime: new BSON.Timestamp({ t: 1795616619, i: 1 }),
        wallTime: new Date('2026-11-25T14:23:39.615Z'),
        fullDocument: {
          _id: new BSON.ObjectId('6b06ef6b467f7699a988cd73'),
          seq: 1,
          t0: 1795616619610.5,
          tags: ['a', 2],
        },
        ns: { db: 'shop', coll: 'orders' },
        documentKey: { _id: new BSON.ObjectId('6b06ef6b467f7699a988cd73') },
        updateDescription: {
          updatedFields: { total: BSON.Decimal128.fromString('9.99') },
          removedFields: [],
          truncatedArrays: [],
        },
      },
      'change event',
    );
  });

  it('follows the library on edge values: -0, NaN, infinities, int64 and beyond, dates out of range and on whole seconds, undefined', () => {
    for (const n of [
      0,
      -0,
      1.5,
      -7,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53,
      2 ** 63,
      2 ** 64,
      NaN,
      Infinity,
      -Infinity,
      1e-300,
    ])
      same({ n, a: [n] }, `number ${n}`);
    for (const ms of [
      0,
      -1,
      1000,
      1795616619000,
      1795616619615,
      253402300799999,
      253402300800000,
      -62135596800000,
      NaN,
    ])
      same({ d: new Date(ms) }, `date ${ms}`);
    same({ u: undefined, a: [undefined, null, true, false] }, 'undefined and null');
    same({ s: 'quote " backslash \\ newline \n tab \t nul \u0000 emoji 😀 lone \ud800' }, 'string escapes');
    same({ '': 1, 'a.b': 2, $weird: 3, ü: 4 }, 'keys');
  });

  it(`matches the library on random documents of every BSON type, before and after a BSON round trip (seed ${SEED}; TEST_SEED replays)`, () => {
    const rand = random(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const text = () =>
      Array.from({ length: int(12) }, () =>
        String.fromCharCode(rand() < 0.1 ? int(0x10000) : 32 + int(90)),
      ).join('');
    // Keys and regex patterns are BSON cstrings: a NUL byte cannot be serialized in them.
    const cstring = () => text().replace(/\0/g, '');
    const scalars: (() => unknown)[] = [
      () => text(),
      () => rand() * 1e6 - 5e5,
      () => int(2 ** 31),
      () => [-0, NaN, Infinity, -Infinity, 2 ** 60][int(5)],
      () => rand() < 0.5,
      () => null,
      () => new Date(int(2) ? int(2 ** 42) : -int(2 ** 42)),
      () => new BSON.ObjectId(),
      () => new BSON.Timestamp({ t: int(2 ** 32), i: int(2 ** 32) }),
      () => BSON.Long.fromNumber(int(2 ** 53) - 2 ** 52),
      () => new BSON.Int32(int(1000)),
      () => new BSON.Double(rand() * 100),
      () => BSON.Decimal128.fromString(`${int(10000)}.${int(100)}`),
      () => new BSON.Binary(Buffer.from(text()), [0, 4][int(2)]),
      () => new BSON.MinKey(),
      () => new BSON.MaxKey(),
      () => new BSON.BSONRegExp(cstring().replace(/[\\[\](){}*+?.^$|]/g, '') || 'x', 'i'),
      () => new BSON.Code('function () {}'),
      () => new BSON.DBRef('coll', new BSON.ObjectId()),
      () => new BSON.BSONSymbol(text()),
    ];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth < 3 && r < 0.15) return Array.from({ length: int(4) }, () => value(depth + 1));
      if (depth < 3 && r < 0.3) return doc(depth + 1);
      return scalars[int(scalars.length)]!();
    };
    const doc = (depth: number): Record<string, unknown> => {
      const d: Record<string, unknown> = {};
      for (let k = int(6); k > 0; k--) d[cstring() || `k${k}`] = value(depth);
      return d;
    };
    for (let i = 0; i < 300; i++) {
      const d = doc(0);
      same(d, `document ${i}`);
      // What the driver hands the relay: the same document after the wire (promoted values).
      same(BSON.deserialize(BSON.serialize(d)), `document ${i} after a BSON round trip`);
    }
  });
});
