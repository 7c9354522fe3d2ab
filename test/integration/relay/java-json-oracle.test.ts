/**
 * src/pipeline/output/javaJson.ts against its oracle, the MongoDB Java driver's own JsonWriter (the bson
 * jar both connectors run with, from the Connect jars in .cache/): seeded random documents of every BSON
 * type the writer handles, written by both in the four styles the drop-in formats use, compared byte for
 * byte. The documents go to Java as canonical Extended JSON of their BSON bytes, so Java sees the stored
 * types; the relay's writer gets what the Node driver decodes from the same bytes, as in the relay.
 *
 * Left out on purpose (README, "Drop-in output formats"): doubles with an integral value and 64-bit
 * integers within 2^53 (the Node driver hands both over as plain numbers), and doubles whose shortest
 * digits JDK 17's Double.toString does not find (the generator uses short decimals), and regex options
 * other than i, m, s (the Node driver revives a regex as a JavaScript RegExp, which has no x or u).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { BSON } from 'mongodb';
import { ensureConnectJars } from '../../../scripts/kafka-connect/connectWorker.js';
import { writeJavaJson, type JavaJsonStyle } from '../../../src/pipeline/output/javaJson.js';
import { chooseSeed, SeededRandom } from '../../support/random.js';

const execFileP = promisify(execFile);
const SEED = chooseSeed();
const COUNT = 300;
const STYLES: [string, JavaJsonStyle][] = [
  ['strict ", " (MongoDB connector DefaultJson)', { mode: 'strict', compact: false }],
  ['strict "," (Debezium before/after)', { mode: 'strict', compact: true }],
  ['relaxed "," (Debezium key)', { mode: 'relaxed', compact: true }],
  ['relaxed ", " (Debezium updatedFields)', { mode: 'relaxed', compact: false }],
];

/** Characters of every class the writer treats apart: plain, escaped by name, \\u-escaped, copied. */
const CHARS = [
  'a',
  'Z',
  '7',
  ' ',
  '"',
  '\\',
  '/',
  '\n',
  '\t',
  '\r',
  '\b',
  '\f',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\u00ad',
  'é',
  'ß',
  '中',
  '\u0301',
  '\u02b0',
  '\u2028',
  '\u2029',
  '\u200b',
  '€',
  '©',
  '«',
  '😀',
  '𝔸',
  '\ue000',
  '<',
  '&',
];

function text(r: SeededRandom, max = 12): string {
  let s = '';
  for (let i = r.int(max); i > 0; i--) s += r.pick(CHARS);
  return s;
}

function key(r: SeededRandom): string {
  const k = text(r, 8);
  return k.startsWith('$') ? `k${k}` : k;
}

function double(r: SeededRandom): number {
  const special = [
    NaN,
    Infinity,
    -Infinity,
    -0,
    1e-5,
    1.5e22,
    1e7 + 0.5,
    0.001,
    2.5e-300,
    1.7976931348623157e308,
  ];
  if (r.int(5) === 0) return r.pick(special);
  const digits = 1 + r.int(6);
  const n = Number((r.between(-1, 1) * 10 ** r.int(12)).toFixed(digits)) * 10 ** (r.int(20) - 10);
  return Number.isInteger(n) ? Number((n % 1000) + 0.25) : n; // integral doubles: see above
}

function value(r: SeededRandom, depth: number): unknown {
  switch (r.int(depth > 2 ? 14 : 16)) {
    case 0:
      return text(r);
    case 1:
      return r.int(2 ** 32) - 2 ** 31;
    case 2:
      return new BSON.Double(double(r));
    case 3:
      // Beyond 2^53, so the Node driver keeps it a Long.
      return BSON.Long.fromBigInt((BigInt(r.int(2 ** 30)) << 33n) + 2n ** 53n + 1n).multiply(r.pick([1, -1]));
    case 4:
      return new Date(Math.floor(r.between(-62135596800000, 253402300799999 * 1.5)));
    case 5:
      return new BSON.ObjectId(Buffer.from(Array.from({ length: 12 }, () => r.int(256))));
    case 6: {
      const subType = r.pick([0, 4, 0x80]);
      const length = subType === 4 ? 16 : r.int(20);
      return new BSON.Binary(Buffer.from(Array.from({ length }, () => r.int(256))), subType);
    }
    case 7:
      return BSON.Decimal128.fromString(
        `${r.int(2) ? '-' : ''}${r.int(100000)}.${r.int(1000)}E${r.int(40) - 20}`,
      );
    case 8:
      return new BSON.Timestamp({ t: r.int(2 ** 32), i: r.int(2 ** 32) });
    case 9:
      return new BSON.BSONRegExp(
        r.pick(['a.b', '^x+$', 'é中😀', '\\d{2}\\s', '"q"', '[a-z]*', '\u00ad\u0301', '\u0001\t']),
        [...'ims'].filter(() => r.int(2)).join(''),
      );
    case 10:
      return r.pick([new BSON.MinKey(), new BSON.MaxKey(), null, true, false]);
    case 11:
      return r.int(2) ? new BSON.Code(text(r)) : new BSON.Code(text(r), { [key(r)]: r.int(100) });
    case 12:
      return r.pick(['', 'plain ascii', '"quoted"', 'line\nbreak']);
    case 13:
      return r.int(1000);
    case 14:
      return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    default:
      return document(r, depth + 1);
  }
}

function document(r: SeededRandom, depth = 0): BSON.Document {
  const doc: BSON.Document = {};
  for (let i = r.int(6) + (depth === 0 ? 1 : 0); i > 0; i--) doc[key(r)] = value(r, depth);
  return doc;
}

describe("javaJson.ts against the Java driver's JsonWriter (the connectors' own writer)", function () {
  this.timeout(300_000);

  it(`writes ${COUNT} random documents of every BSON type as Java does, in all four styles (seed ${SEED})`, async () => {
    console.log(`      seed ${SEED} (replay: TEST_SEED=${SEED})`);
    const r = new SeededRandom(SEED);
    const docs = Array.from({ length: COUNT }, () => BSON.serialize(document(r)));
    const lines = docs.map((bytes) =>
      BSON.EJSON.stringify(BSON.deserialize(bytes, { promoteValues: false, bsonRegExp: true }), {
        relaxed: false,
      }),
    );
    const libs = await ensureConnectJars((line) => console.log(`      ${line}`));
    const oracle = path.resolve(import.meta.dirname, '../../support/java/JavaJsonOracle.java');
    const child = execFileP('java', ['-cp', `${libs}/*`, oracle], { maxBuffer: 256 << 20 });
    child.child.stdin!.end(`${lines.join('\n')}\n`);
    const java = (await child).stdout.split('\n');
    expect(java.length - 1, 'lines from Java').to.equal(COUNT * STYLES.length);
    docs.forEach((bytes, i) => {
      const decoded = BSON.deserialize(bytes); // what the relay's driver hands it
      STYLES.forEach(([name, style], s) => {
        expect(writeJavaJson(decoded, style), `document ${i} (${lines[i]}), ${name}`).to.equal(
          java[i * STYLES.length + s],
        );
      });
    });
  });
});
