/**
 * Extended JSON as the MongoDB Java driver's `JsonWriter` writes it: the text inside the records of the
 * two Kafka Connect connectors the drop-in output formats copy (RELAY_OUTPUT_FORMAT). Both connectors
 * serialise BSON with that writer, so a consumer that parses their strings byte for byte (or compares
 * them) sees the same text from the relay:
 *
 *  - `strict` is the driver's deprecated JsonMode.STRICT (Extended JSON v1): `{"$date": <ms>}`,
 *    `{"$numberLong": "<n>"}`, `{"$binary": "<base64>", "$type": "<hex>"}`, doubles as Java prints them
 *    (`3.0`, `1.0E300`, and the non-JSON tokens `NaN`, `Infinity`). The MongoDB connector's DefaultJson
 *    formatter and Debezium's `before`/`after` use it.
 *  - `relaxed` is JsonMode.RELAXED (Extended JSON v2): 64-bit integers as numbers, dates in 1970–9999 as
 *    ISO-8601 text. Debezium's key and `updatedFields` use it.
 *  - `compact`: the member separator. The driver writes `", "` by default; Debezium configures it to
 *    indent with empty indentation and line breaks, which leaves `","` (arrays too).
 *
 * The input is what the Node driver decodes, which has already lost one distinction: a BSON double with
 * an integral value and a 64-bit integer small enough for a double both arrive as JavaScript numbers.
 * Integral numbers are written as 32-bit integers when they fit and as 64-bit integers beyond (README,
 * "Drop-in output formats", says what this changes).
 */
import { BSON } from 'mongodb';

export interface JavaJsonStyle {
  mode: 'strict' | 'relaxed';
  compact: boolean;
}

/** 9999-12-31T23:59:59.999Z: the last date the relaxed mode writes as ISO text. */
const LAST_ISO_DATE_MS = 253402300799999;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

export function writeJavaJson(value: unknown, style: JavaJsonStyle): string {
  return new Writer(style).value(value);
}

/** The characters Java's writer copies as they are (by Character.getType); every other UTF-16 unit is `\uXXXX`. */
const PRINTABLE =
  /[\p{Lu}\p{Ll}\p{Lt}\p{Lo}\p{Nd}\p{Nl}\p{No}\p{Zs}\p{Pc}\p{Pd}\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Po}\p{Sm}\p{Sc}\p{Sk}\p{So}]/u;
const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};
/** Strings with nothing to escape are copied in one step (most field names and values). */
const PLAIN_ASCII = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

export function javaString(s: string): string {
  if (PLAIN_ASCII.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (PRINTABLE.test(c)) out += c;
    else out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** `Double.toString`: shortest digits, plain between 10^-3 and 10^7, else `d.dddE±n`; always a fraction. */
export function javaDouble(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(n);
  if (abs >= 1e-3 && abs < 1e7) {
    const plain = String(n);
    return plain.includes('.') ? plain : `${plain}.0`;
  }
  const [mantissa, exponent] = n.toExponential().split('e') as [string, string];
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exponent.replace('+', '')}`;
}

/** java.time's ISO_OFFSET_DATE_TIME of an instant in UTC: seconds always, the fraction only as needed. */
function javaIsoDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

const regexOption = (flag: string): string[] => (flag === 'g' ? ['s'] : 'im'.includes(flag) ? [flag] : []);

const hex2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');

class Writer {
  private readonly sep: string;

  constructor(private readonly style: JavaJsonStyle) {
    this.sep = style.compact ? ',' : ', ';
  }

  value(v: unknown): string {
    switch (typeof v) {
      case 'string':
        return javaString(v);
      case 'number':
        return this.number(v);
      case 'bigint':
        return this.int64(v.toString());
      case 'boolean':
        return v ? 'true' : 'false';
      case 'undefined':
        return 'null';
      case 'object':
        if (v === null) return 'null';
        if (Array.isArray(v)) return `[${v.map((e) => this.value(e)).join(this.sep)}]`;
        return this.object(v);
      default:
        return 'null';
    }
  }

  private number(n: number): string {
    if (Number.isInteger(n) && !Object.is(n, -0)) {
      if (n >= INT32_MIN && n <= INT32_MAX) return String(n);
      if (Number.isSafeInteger(n)) return this.int64(String(n));
    }
    return this.double(n);
  }

  private double(n: number): string {
    if (this.style.mode === 'relaxed' && !Number.isFinite(n))
      return this.doc([['$numberDouble', javaString(javaDouble(n))]]);
    return javaDouble(n);
  }

  private int64(text: string): string {
    return this.style.mode === 'relaxed' ? text : this.doc([['$numberLong', javaString(text)]]);
  }

  /** A document of already written members, in the writer's separators. */
  private doc(members: [string, string][]): string {
    return `{${members.map(([k, v]) => `${javaString(k)}: ${v}`).join(this.sep)}}`;
  }

  private object(o: object): string {
    if (o instanceof Date) return this.date(o.getTime());
    // The Node driver revives a BSON regex as a RegExp: option s arrives as flag g, x and u are lost,
    // and `source` escapes "/" and line breaks (README, "Drop-in output formats").
    if (o instanceof RegExp) return this.regex(o.source, [...o.flags].flatMap(regexOption));
    const bsontype = (o as { _bsontype?: unknown })._bsontype;
    switch (bsontype) {
      case 'ObjectId':
        return this.doc([['$oid', javaString((o as BSON.ObjectId).toHexString())]]);
      case 'Timestamp': {
        const t = o as BSON.Timestamp;
        return this.doc([
          [
            '$timestamp',
            this.doc([
              ['t', String(t.t)],
              ['i', String(t.i)],
            ]),
          ],
        ]);
      }
      case 'Long':
        return this.int64((o as BSON.Long).toString());
      case 'Int32':
        return String((o as BSON.Int32).value);
      case 'Double':
        return this.double((o as BSON.Double).value);
      case 'Decimal128':
        return this.doc([['$numberDecimal', javaString((o as BSON.Decimal128).toString())]]);
      case 'Binary':
        return this.binary(o as BSON.Binary);
      case 'BSONRegExp': {
        const r = o as BSON.BSONRegExp;
        return this.regex(r.pattern, [...r.options]);
      }
      case 'MinKey':
        return this.doc([['$minKey', '1']]);
      case 'MaxKey':
        return this.doc([['$maxKey', '1']]);
      case 'BSONSymbol':
        return this.doc([['$symbol', javaString((o as BSON.BSONSymbol).value)]]);
      case 'Code': {
        const c = o as BSON.Code;
        const members: [string, string][] = [['$code', javaString(c.code)]];
        if (c.scope) members.push(['$scope', this.object(c.scope)]);
        return this.doc(members);
      }
      case 'DBRef':
        // In BSON a DBRef is a plain document ({$ref, $id[, $db], ...}); the Node driver revives it.
        return this.object((o as BSON.DBRef).toJSON());
      default:
        return this.doc(Object.entries(o).map(([k, v]) => [k, this.value(v)]));
    }
  }

  private date(ms: number): string {
    if (this.style.mode === 'strict') return this.doc([['$date', String(ms)]]);
    if (ms >= 0 && ms <= LAST_ISO_DATE_MS) return this.doc([['$date', javaString(javaIsoDate(ms))]]);
    return this.doc([['$date', this.doc([['$numberLong', javaString(String(ms))]])]]);
  }

  private binary(b: BSON.Binary): string {
    const base64 = javaString(b.toString('base64'));
    const subType = javaString(hex2(b.sub_type));
    if (this.style.mode === 'strict')
      return this.doc([
        ['$binary', base64],
        ['$type', subType],
      ]);
    return this.doc([
      [
        '$binary',
        this.doc([
          ['base64', base64],
          ['subType', subType],
        ]),
      ],
    ]);
  }

  /** The Java driver's BsonRegularExpression keeps its options sorted. */
  private regex(pattern: string, flags: string[]): string {
    const options = javaString([...flags].sort().join(''));
    if (this.style.mode === 'strict')
      return this.doc([
        ['$regex', javaString(pattern)],
        ['$options', options],
      ]);
    return this.doc([
      [
        '$regularExpression',
        this.doc([
          ['pattern', javaString(pattern)],
          ['options', options],
        ]),
      ],
    ]);
  }
}
