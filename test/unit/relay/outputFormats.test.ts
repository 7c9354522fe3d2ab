/**
 * The drop-in output formats (RELAY_OUTPUT_FORMAT) against what the real connectors write:
 *  - debezium: against records the real Debezium MongoDB connector 3.6.1.Final wrote for the same
 *    documents (test/fixtures/debezium/records-3.6.1.json; the live comparison is
 *    test/integration/relay/debezium-compat.test.ts);
 *  - mongo-kafka-connect: against the MongoDB connector's documented output (DefaultJson is the Java
 *    driver's strict mode: `{"$date": <ms>}`, `{"$numberLong": "<n>"}`, `{"$binary": ..., "$type": ...}`).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  BSON,
  Binary,
  BSONRegExp,
  Code,
  Decimal128,
  Long,
  MaxKey,
  MinKey,
  ObjectId,
  Timestamp,
  UUID,
  type ChangeStreamDocument,
} from 'mongodb';
import { toRecord, needsTombstone, type RecordOptions } from '../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';
import { javaDouble, writeJavaJson } from '../../../src/pipeline/output/javaJson.js';
import { ChangeConverter } from '../../../src/pipeline/readItem.js';
import { debeziumTopicPrefix } from '../../../src/config/outputFormat.js';

interface CapturedRecord {
  key: string;
  op: string | null;
  after: string | null;
  updateDescription: {
    removedFields: string[] | null;
    updatedFields: string;
    truncatedArrays: { field: string; size: number }[] | null;
  } | null;
  tombstone: boolean;
  headers: string[];
}
const captured = (
  JSON.parse(
    readFileSync(new URL('../../fixtures/debezium/records-3.6.1.json', import.meta.url), 'utf8'),
  ) as { records: CapturedRecord[] }
).records;

const oid = new ObjectId('6b1646c7d89dbefdfee03755');
/** The documents the capture inserted, as the Node driver decodes them from the server. */
const inserted: BSON.Document[] = [
  {
    _id: 'types',
    s: 'tab\tnl\nq"bs\\ é ü 中 😀 \u2028 \u0001 </script> \u007f',
    neg0: -0,
    nan: NaN,
    inf: Infinity,
    ninf: -Infinity,
    big: 1e300,
    small: 1.0000001,
    int32: 2147483647,
    dbl: 3,
    d0: new Date(-1),
    d1: new Date(Date.UTC(10000, 0, 1)),
    re: new BSONRegExp('a.b', 'ims'),
    mn: new MinKey(),
    mx: new MaxKey(),
    code: new Code('x=1'),
    bin3: new Binary(Buffer.alloc(16, 1), 3),
    oid,
    arr: [],
    emp: {},
    nul: null,
    bt: true,
    bf: false,
    ts: new Timestamp({ t: 4294967295, i: 4294967295 }),
    l: Long.fromString('-9223372036854775808'),
    dec: Decimal128.fromString('-0E+3'),
    'dot.key': 1,
    '': 3,
  },
  { _id: new Date(Date.UTC(2021, 1, 3)), k: 'date id' },
  { _id: new UUID('0f0e0d0c-0b0a-0908-0706-050403020100'), k: 'uuid id' },
  { _id: 1.5, k: 'double id' },
  { _id: Decimal128.fromString('12.50'), k: 'dec id' },
  // The capture inserted `l` as a 64-bit integer; the Node driver hands it back as the number 5.
  { _id: { l: Long.fromNumber(5), d: new Date(0), o: oid }, k: 'compound id' },
  { _id: 'é"\\😀', k: 'unicode id' },
  { _id: 'upd', nul: null, arr: [9] },
];

const router = new TopicRouter('cap.{db}.{coll}', { level: 'deployment' });
const debezium: RecordOptions = {
  format: 'relaxed',
  partitionBy: 'document',
  output: 'debezium',
  debezium: { name: 'cap', runId: 'run-1', version: '0.1.0' },
};
let seq = 0;
function event(fields: BSON.Document): ChangeStreamDocument {
  seq += 1;
  return {
    _id: { _data: `82${String(seq).padStart(4, '0')}` },
    clusterTime: new Timestamp({ t: 1796622023, i: seq }),
    wallTime: new Date(1796622023825),
    ns: { db: 'capdb', coll: 'people5' },
    ...fields,
  } as unknown as ChangeStreamDocument;
}
const recordOf = (e: ChangeStreamDocument, o: RecordOptions = debezium) =>
  toRecord(e, e._id as { _data: string }, router, o);

describe('RELAY_OUTPUT_FORMAT=debezium: records as the real Debezium connector wrote them', () => {
  const inserts = captured.filter((r) => r.op === 'c');

  it('has one captured insert per document', () => expect(inserts).to.have.length(inserted.length));

  inserted.forEach((doc, i) => {
    it(`insert of _id ${BSON.EJSON.stringify(doc._id as BSON.Document)}: same key and "after" byte for byte`, () => {
      const r = recordOf(
        event({ operationType: 'insert', documentKey: { _id: doc._id }, fullDocument: doc }),
      );
      const value = JSON.parse(r.value as string) as Record<string, unknown>;
      expect(r.key).to.equal(inserts[i]!.key);
      expect(value.after).to.equal(inserts[i]!.after);
      expect(value.op).to.equal('c');
      expect(value.before).to.equal(null);
      expect(value.updateDescription).to.equal(null);
      expect(Object.keys(value)).to.deep.equal([
        'before',
        'after',
        'updateDescription',
        'source',
        'op',
        'ts_ms',
        'transaction',
      ]);
    });
  });

  it('updates: updateDescription as Debezium writes it (relaxed updatedFields, empty lists as null)', () => {
    const updates = captured.filter((r) => r.op === 'u');
    const first = recordOf(
      event({
        operationType: 'update',
        documentKey: { _id: 'upd' },
        updateDescription: {
          updatedFields: { arr: [1, 2, 3], deep: { x: { y: 1 } }, when: new Date(5) },
          removedFields: ['nul'],
          truncatedArrays: [],
        },
        fullDocument: {
          _id: 'upd',
          arr: [1, 2, 3],
          deep: { x: { y: Long.fromNumber(1) } },
          when: new Date(5),
        },
      }),
    );
    const second = recordOf(
      event({
        operationType: 'update',
        documentKey: { _id: 'upd' },
        updateDescription: {
          updatedFields: {},
          removedFields: [],
          truncatedArrays: [{ field: 'arr', newSize: 1 }],
        },
      }),
    );
    expect(JSON.parse(first.value as string).updateDescription).to.deep.equal(updates[0]!.updateDescription);
    expect(JSON.parse(second.value as string).updateDescription).to.deep.equal(updates[1]!.updateDescription);
  });

  it('a delete: op d, no after, and a tombstone with the same key and headers', () => {
    const [del, tomb] = captured.filter((r) => r.key === '{"id":"1.5"}' && (r.op === 'd' || r.tombstone));
    const r = recordOf(event({ operationType: 'delete', documentKey: { _id: 1.5 } }));
    const value = JSON.parse(r.value as string) as Record<string, unknown>;
    expect([r.key, value.op, value.after]).to.deep.equal([del!.key, 'd', null]);
    expect(tomb!.tombstone).to.equal(true);
    expect(needsTombstone(debezium, 'delete')).to.equal(true);
    expect(needsTombstone(debezium, 'update')).to.equal(false);
  });

  it("source: the fields and their order, the relay as the connector; its headers beside the relay's", () => {
    const r = recordOf(event({ operationType: 'insert', documentKey: { _id: 1 }, fullDocument: { _id: 1 } }));
    const source = (JSON.parse(r.value as string) as { source: Record<string, unknown> }).source;
    expect(Object.keys(source)).to.deep.equal([
      'version',
      'connector',
      'name',
      'ts_ms',
      'snapshot',
      'db',
      'sequence',
      'ts_us',
      'ts_ns',
      'collection',
      'ord',
      'lsid',
      'txnNumber',
      'wallTime',
    ]);
    expect(source).to.include({ connector: 'mongodb', name: 'cap', ts_ms: 1796622023825, snapshot: 'false' });
    expect(source).to.include({ db: 'capdb', collection: 'people5', wallTime: 1796622023825, ord: seq });
    for (const h of captured[0]!.headers.filter((h) => h !== '__debezium.context.runId'))
      expect(r.headers, h).to.have.property(h);
    expect(r.headers['__debezium.context.runId']).to.equal('run-1');
    expect(r.headers['change-id']).to.equal(`82${String(seq).padStart(4, '0')}`);
    expect(r.headers['content-type']).to.equal('application/json; format=debezium');
    expect(r.partitionKey.toString()).to.equal(r.key);
  });

  it('a replace is op u without updateDescription; a relay snapshot copy is op r with snapshot "true"', () => {
    const replace = JSON.parse(
      recordOf(event({ operationType: 'replace', documentKey: { _id: 1 }, fullDocument: { _id: 1, n: 3 } }))
        .value as string,
    ) as Record<string, unknown>;
    expect([replace.op, replace.updateDescription, replace.after]).to.deep.equal([
      'u',
      null,
      '{"_id": 1,"n": 3}',
    ]);
    const copy = JSON.parse(
      recordOf(event({ operationType: 'snapshot', documentKey: { _id: 1 }, fullDocument: { _id: 1 } }))
        .value as string,
    ) as { op: string; source: { snapshot: string } };
    expect([copy.op, copy.source.snapshot]).to.deep.equal(['r', 'true']);
  });

  it('drop, rename and other non-document events are filtered, as Debezium publishes none of them', () => {
    const converter = new ChangeConverter({
      router,
      record: debezium,
      operationTypes: null,
      deadLetterTopic: 'dlq',
    });
    const token = { _data: '82ff' };
    const item = converter.convert({
      kind: 'change',
      event: event({ operationType: 'drop' }),
      token,
      readAt: 0,
    } as Parameters<ChangeConverter['convert']>[0]);
    expect(item).to.include({ kind: 'filtered', operationType: 'drop' });
  });

  it('the logical name is KAFKA_TOPIC without its .{db}.{coll}; other templates have none', () => {
    expect(debeziumTopicPrefix('dbserver1.{db}.{coll}')).to.equal('dbserver1');
    expect(debeziumTopicPrefix('a.b.{db}.{coll}')).to.equal('a.b');
    expect(debeziumTopicPrefix('{db}.{coll}')).to.equal(null);
    expect(debeziumTopicPrefix('cdc.{coll}')).to.equal(null);
  });
});

describe("RELAY_OUTPUT_FORMAT=mongo-kafka-connect: the MongoDB connector's default JSON output", () => {
  const options: RecordOptions = {
    format: 'relaxed',
    partitionBy: 'document',
    output: 'mongo-kafka-connect',
  };

  it('key {"_id": <resume token>}, value the change event in strict mode with ", " separators', () => {
    const e = {
      _id: { _data: '8262E1A9B7000000012B022C0100296E5A1004' },
      operationType: 'insert',
      clusterTime: new Timestamp({ t: 1658956215, i: 1 }),
      wallTime: new Date(1658956215123),
      fullDocument: {
        _id: new ObjectId('5f15aab12435743f9bd126a4'),
        myString: 'some foo bla text',
        myInt: 42,
        myDouble: 20.21,
        mySubDoc: {
          A: new Binary(Buffer.from('Kafka rocks!')),
          B: new Date(1577863627000),
          C: Decimal128.fromString('12345.6789'),
        },
        myLong: Long.fromString('9223372036854775807'),
      },
      ns: { db: 'test', coll: 'pets' },
      documentKey: { _id: new ObjectId('5f15aab12435743f9bd126a4') },
    } as unknown as ChangeStreamDocument;
    const r = toRecord(e, { _data: '8262E1A9B7000000012B022C0100296E5A1004' }, router, options);
    expect(r.key).to.equal('{"_id": {"_data": "8262E1A9B7000000012B022C0100296E5A1004"}}');
    expect(r.value).to.equal(
      '{"_id": {"_data": "8262E1A9B7000000012B022C0100296E5A1004"}, "operationType": "insert", ' +
        '"clusterTime": {"$timestamp": {"t": 1658956215, "i": 1}}, "wallTime": {"$date": 1658956215123}, ' +
        '"fullDocument": {"_id": {"$oid": "5f15aab12435743f9bd126a4"}, "myString": "some foo bla text", ' +
        '"myInt": 42, "myDouble": 20.21, "mySubDoc": {"A": {"$binary": "S2Fma2Egcm9ja3Mh", "$type": "00"}, ' +
        '"B": {"$date": 1577863627000}, "C": {"$numberDecimal": "12345.6789"}}, ' +
        '"myLong": {"$numberLong": "9223372036854775807"}}, "ns": {"db": "test", "coll": "pets"}, ' +
        '"documentKey": {"_id": {"$oid": "5f15aab12435743f9bd126a4"}}}',
    );
    expect(r.topic).to.equal('cap.test.pets');
    expect(r.headers['change-id']).to.equal('8262E1A9B7000000012B022C0100296E5A1004');
    expect(needsTombstone(options, 'delete')).to.equal(false);
  });
});

describe('the Java driver JsonWriter rules (javaJson.ts)', () => {
  it('prints doubles as Double.toString does', () => {
    const cases: [number, string][] = [
      [1.5, '1.5'],
      [3.25e-3, '0.00325'],
      [1e-3, '0.001'],
      [1e-4, '1.0E-4'],
      [1234567.5, '1234567.5'],
      [1e7, '1.0E7'],
      [1.2345e21, '1.2345E21'],
      [-2.5e-10, '-2.5E-10'],
      [0, '0.0'],
    ];
    for (const [n, text] of cases) expect(javaDouble(n), String(n)).to.equal(text);
  });

  it('relaxed mode: 64-bit integers as numbers, non-finite doubles and out-of-range dates as objects', () => {
    const relaxed = { mode: 'relaxed', compact: false } as const;
    expect(writeJavaJson({ a: Long.fromString('9007199254740993'), b: NaN, c: 2.5 }, relaxed)).to.equal(
      '{"a": 9007199254740993, "b": {"$numberDouble": "NaN"}, "c": 2.5}',
    );
    expect(writeJavaJson([new Date(-1), new Date(120)], relaxed)).to.equal(
      '[{"$date": {"$numberLong": "-1"}}, {"$date": "1970-01-01T00:00:00.12Z"}]',
    );
    expect(writeJavaJson(new BSONRegExp('x', 'mi'), relaxed)).to.equal(
      '{"$regularExpression": {"pattern": "x", "options": "im"}}',
    );
  });

  it("escapes what Java's writer escapes: controls, format characters, surrogates, combining marks", () => {
    const strict = { mode: 'strict', compact: true } as const;
    expect(writeJavaJson('a\u00ad\u0301\u02b0b€', strict)).to.equal('"a\\u00ad\\u0301\\u02b0b€"');
  });
});
