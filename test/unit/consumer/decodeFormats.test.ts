/**
 * decodeRecord on the drop-in output formats (RELAY_OUTPUT_FORMAT): records the relay writes
 * (src/pipeline/toRecord.ts, so the round trip is the relay's real output), records of the real
 * connectors without the relay's headers, and relay-format records, which decode as before.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';
import {
  BSON,
  Binary,
  BSONRegExp,
  Code,
  Decimal128,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  ObjectId,
  Timestamp,
  type ChangeStreamDocument,
  type Document,
} from 'mongodb';

import { RecordHeader, contentTypeFor } from '../../../src/contract/record.js';
import {
  ChangeEventDecodeError,
  changeIdOf,
  decodeRecord,
  type DecodedRecord,
} from '../../../src/consumer/decode.js';
import { PermanentHandlerError } from '../../../src/consumer/errors.js';
import {
  tombstoneFor,
  toRecord,
  type OutboundRecord,
  type RecordOptions,
} from '../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';
import { kafkaMessage } from './kafkaMessage.js';

const messageOf = (r: OutboundRecord): KafkaMessage => kafkaMessage(r);

function decode(message: KafkaMessage, relaxed = false): DecodedRecord {
  return decodeRecord('t1', 0, message, { relaxed });
}

function decodedEvent(message: KafkaMessage, relaxed = false): Document {
  const decoded = decode(message, relaxed);
  if (!decoded.ok) throw new Error(`expected ok, got ${decoded.reason}: ${decoded.error}`);
  return decoded.event as unknown as Document;
}

/** Canonical Extended JSON: equal texts mean equal BSON types and values. */
const canonical = (value: unknown): string => BSON.EJSON.stringify(value, { relaxed: false });

const oid = new ObjectId('6b1646c7d89dbefdfee03755');
/** One field of each BSON type the Java writers print in a legacy form, or at all. */
const typed: Document = {
  _id: oid,
  s: 'tab\tnl\nq"bs\\ é 中 😀 \u2028 </script>',
  neg0: -0,
  big: 1e300,
  small: 1.0000001,
  int32: 2147483647,
  dbl: 2.5,
  d0: new Date(-1),
  d1: new Date(Date.UTC(2020, 0, 2)),
  re: new BSONRegExp('a.b', 'ims'),
  mn: new MinKey(),
  mx: new MaxKey(),
  code: new Code('x=1'),
  bin0: new Binary(Buffer.from('hi')),
  bin3: new Binary(Buffer.alloc(16, 1), 3),
  uuid: new BSON.UUID('0f0e0d0c-0b0a-0908-0706-050403020100'),
  ts: new Timestamp({ t: 4294967295, i: 4294967295 }),
  l: Long.fromString('-9223372036854775808'),
  dec: Decimal128.fromString('-0E+3'),
  nested: { arr: [1, { when: new Date(5) }], emp: {} },
  nul: null,
  bt: true,
  'dot.key': 1,
};

const router = new TopicRouter('cap.{db}.{coll}', { level: 'deployment' });
const debezium: RecordOptions = {
  format: 'relaxed',
  partitionBy: 'document',
  output: 'debezium',
  debezium: { name: 'cap', runId: 'run-1', version: '0.1.0' },
};
const kafkaConnect: RecordOptions = {
  format: 'relaxed',
  partitionBy: 'document',
  output: 'mongo-kafka-connect',
};
const relay: RecordOptions = { format: 'relaxed', partitionBy: 'document' };

let seq = 0;
function event(fields: Document): ChangeStreamDocument {
  seq += 1;
  return {
    _id: { _data: `8263${String(seq).padStart(4, '0')}` },
    clusterTime: new Timestamp({ t: 1796622023, i: seq }),
    wallTime: new Date(1796622023825),
    ns: { db: 'capdb', coll: 'people' },
    ...fields,
  } as unknown as ChangeStreamDocument;
}
const recordOf = (e: ChangeStreamDocument, options: RecordOptions): OutboundRecord =>
  toRecord(e, e._id as { _data: string }, router, options);
const changeIdOfEvent = (e: ChangeStreamDocument): string => (e._id as { _data: string })._data;

function withoutHeaders(headers: Record<string, string>, ...names: string[]): Record<string, string> {
  const copy = { ...headers };
  for (const name of names) delete copy[name];
  return copy;
}

interface CapturedRecord {
  key: string;
  op: string | null;
  after: string | null;
  updateDescription: unknown;
  tombstone: boolean;
  source: Document;
}
/** Records the real Debezium connector wrote (no relay headers). */
const captured = (
  JSON.parse(
    readFileSync(new URL('../../fixtures/debezium/records-3.6.1.json', import.meta.url), 'utf8'),
  ) as { records: CapturedRecord[] }
).records;
const envelopeOf = (r: CapturedRecord): string =>
  JSON.stringify({
    before: null,
    after: r.after,
    updateDescription: r.updateDescription,
    source: { version: '3.6.1.Final', name: 'cap', ts_ms: 1796622023825, ...r.source },
    op: r.op,
    ts_ms: 1796622024000,
    transaction: null,
  });

describe('consumer/decode: the drop-in output formats', () => {
  describe('mongo-kafka-connect', () => {
    it('decodes a record the relay wrote: change ID from the header, the strict Extended JSON into BSON types', () => {
      const e = event({ operationType: 'insert', fullDocument: typed, documentKey: { _id: oid } });
      const r = recordOf(e, kafkaConnect);
      expect(r.headers[RecordHeader.contentType]).to.equal('application/json; format=mongo-kafka-connect');
      const decoded = decode(messageOf(r));
      if (!decoded.ok) throw new Error(decoded.error);
      expect(decoded.changeId).to.equal(changeIdOfEvent(e));
      expect(decoded.tombstone).to.equal(false);
      const got = decoded.event as unknown as Document;
      expect(got.operationType).to.equal('insert');
      expect(got.clusterTime).to.be.instanceOf(Timestamp);
      expect(got.wallTime).to.be.instanceOf(Date);
      expect((got.wallTime as Date).getTime()).to.equal(1796622023825);
      expect(got.fullDocument.bin0).to.be.instanceOf(Binary);
      expect(got.fullDocument.d1).to.be.instanceOf(Date);
      expect(got.fullDocument.l).to.be.instanceOf(Long);
      expect(got.fullDocument.int32).to.be.instanceOf(Int32);
      expect(got.fullDocument.dbl).to.be.instanceOf(Double);
      expect(canonical(got)).to.equal(canonical(e));
    });

    it('decodes the documented strict form ({"$date": <ms>}, {"$binary": ..., "$type": ...})', () => {
      const value =
        '{"_id": {"_data": "8263AB"}, "operationType": "insert", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, ' +
        '"fullDocument": {"_id": {"$oid": "6b1646c7d89dbefdfee03755"}, "n": {"$numberLong": "5"}, ' +
        '"d": {"$date": 1577923200000}, "b": {"$binary": "aGk=", "$type": "00"}}, ' +
        '"ns": {"db": "d", "coll": "c"}, "documentKey": {"_id": {"$oid": "6b1646c7d89dbefdfee03755"}}}';
      const got = decodedEvent(kafkaMessage({ key: '{"_id": {"_data": "8263AB"}}', value }));
      expect(got.fullDocument.n).to.be.instanceOf(Long);
      expect((got.fullDocument.d as Date).toISOString()).to.equal('2020-01-02T00:00:00.000Z');
      expect(Buffer.from((got.fullDocument.b as Binary).buffer).toString()).to.equal('hi');
      expect((got.clusterTime as Timestamp).equals(new Timestamp({ t: 5, i: 1 }))).to.equal(true);

      const relaxed = decodedEvent(kafkaMessage({ key: '{"_id": {"_data": "8263AB"}}', value }), true);
      expect(relaxed.fullDocument.n).to.equal(5);
    });

    it("takes the change ID from the key's _id._data for a record of the real connector (no headers)", () => {
      const e = event({ operationType: 'delete', documentKey: { _id: oid } });
      const r = recordOf(e, kafkaConnect);
      const decoded = decode(kafkaMessage({ key: r.key, value: r.value }));
      expect(decoded).to.include({ ok: true, changeId: changeIdOfEvent(e) });
      if (!decoded.ok) return;
      expect(decoded.record.key).to.equal(`{"_id": {"_data": "${changeIdOfEvent(e)}"}}`);
      expect(decoded.event.operationType).to.equal('delete');
    });

    it('reports no-change-id when neither the header nor the key gives one', () => {
      const r = recordOf(event({ operationType: 'delete', documentKey: { _id: oid } }), kafkaConnect);
      const headers = withoutHeaders(r.headers, RecordHeader.changeId);
      for (const key of [null, 'not json', '{"_id": {"_data": 7}}', '{"id": "x"}']) {
        const decoded = decode(kafkaMessage({ key, value: r.value, headers }));
        expect(decoded, String(key)).to.include({ ok: false, reason: 'no-change-id', changeId: null });
      }
    });

    it('reports decode-failed at once for a value with a bare NaN (not JSON)', () => {
      const e = event({ operationType: 'insert', fullDocument: { _id: 1, x: NaN }, documentKey: { _id: 1 } });
      const r = recordOf(e, kafkaConnect);
      expect(r.value).to.contain('"x": NaN');
      expect(decode(messageOf(r))).to.include({
        ok: false,
        reason: 'decode-failed',
        changeId: changeIdOfEvent(e),
      });
    });
  });

  describe('debezium, with the relay headers', () => {
    it('rebuilds an insert: documentKey and clusterTime from the headers, ns and wallTime from source', () => {
      const e = event({ operationType: 'insert', fullDocument: typed, documentKey: { _id: oid } });
      const r = recordOf(e, debezium);
      expect(r.headers[RecordHeader.contentType]).to.equal(contentTypeFor('relaxed', 'debezium'));
      const decoded = decode(messageOf(r));
      if (!decoded.ok) throw new Error(decoded.error);
      expect(decoded.changeId).to.equal(changeIdOfEvent(e));
      expect(decoded.event).to.equal(decoded.event);
      expect(canonical(decoded.event)).to.equal(
        canonical({
          _id: e._id,
          operationType: 'insert',
          clusterTime: e.clusterTime,
          wallTime: new Date(1796622023825),
          fullDocument: typed,
          ns: { db: 'capdb', coll: 'people' },
          documentKey: { _id: oid },
        }),
      );
    });

    it('rebuilds an update with its update description (removed fields, truncated arrays)', () => {
      const e = event({
        operationType: 'update',
        documentKey: { _id: 'upd' },
        updateDescription: {
          updatedFields: { arr: [1, 2, 3], 'deep.x': { y: Long.fromNumber(1) }, when: new Date(5) },
          removedFields: ['nul'],
          truncatedArrays: [{ field: 'old', newSize: 1 }],
        },
        fullDocument: {
          _id: 'upd',
          arr: [1, 2, 3],
          deep: { x: { y: Long.fromNumber(1) } },
          when: new Date(5),
        },
        fullDocumentBeforeChange: { _id: 'upd', nul: null, old: [7, 8] },
      });
      const got = decodedEvent(messageOf(recordOf(e, debezium)));
      expect(got.operationType).to.equal('update');
      expect(got.documentKey).to.deep.equal({ _id: 'upd' });
      expect(got.updateDescription.removedFields).to.deep.equal(['nul']);
      expect(got.updateDescription.truncatedArrays).to.deep.equal([{ field: 'old', newSize: 1 }]);
      expect(got.updateDescription.updatedFields.when).to.be.instanceOf(Date);
      expect((got.updateDescription.updatedFields.when as Date).getTime()).to.equal(5);
      // Debezium writes updatedFields in relaxed mode: a Long that fits arrives as a plain number.
      expect(canonical(got.updateDescription.updatedFields['deep.x'])).to.equal('{"y":{"$numberInt":"1"}}');
      expect(got.fullDocument.deep.x.y).to.be.instanceOf(Long);
      expect(canonical(got.fullDocumentBeforeChange)).to.equal(
        canonical({ _id: 'upd', nul: null, old: [7, 8] }),
      );
    });

    it('gives an update without removed fields or truncated arrays empty lists', () => {
      const e = event({
        operationType: 'update',
        documentKey: { _id: 'upd' },
        updateDescription: { updatedFields: { a: 1 }, removedFields: [], truncatedArrays: [] },
      });
      const got = decodedEvent(messageOf(recordOf(e, debezium)));
      expect(got.updateDescription).to.deep.include({ removedFields: [], truncatedArrays: [] });
      expect(got).not.to.have.property('fullDocument');
    });

    it('rebuilds a replace (op u without updateDescription)', () => {
      const e = event({
        operationType: 'replace',
        documentKey: { _id: 7 },
        fullDocument: { _id: 7, v: 'new' },
      });
      const r = recordOf(e, debezium);
      expect(JSON.parse(r.value as string)).to.include({ op: 'u', updateDescription: null });
      const got = decodedEvent(messageOf(r));
      expect(got.operationType).to.equal('replace');
      expect(got).not.to.have.property('updateDescription');
      expect(canonical(got.fullDocument)).to.equal(canonical({ _id: 7, v: 'new' }));
      expect(canonical(got.documentKey)).to.equal(canonical({ _id: 7 }));
    });

    it('rebuilds a delete, and its tombstone through the headers', () => {
      const e = event({ operationType: 'delete', documentKey: { _id: oid } });
      const r = recordOf(e, debezium);
      const got = decodedEvent(messageOf(r));
      expect(got.operationType).to.equal('delete');
      expect(got).not.to.have.property('fullDocument');
      expect((got.documentKey._id as ObjectId).equals(oid)).to.equal(true);

      const tombstone = decode(messageOf(tombstoneFor(r)));
      expect(tombstone).to.include({ ok: true, tombstone: true, changeId: changeIdOfEvent(e) });
      if (!tombstone.ok) return;
      expect(tombstone.record.message.value).to.equal(null);
      expect(canonical(tombstone.event)).to.equal(
        canonical({
          _id: e._id,
          operationType: 'delete',
          ns: { db: 'capdb', coll: 'people' },
          documentKey: { _id: oid },
          clusterTime: e.clusterTime,
        }),
      );
    });

    it('rebuilds a snapshot copy (op r)', () => {
      const e = {
        _id: { _data: 'snapshot:1796622023.1-1:capdb.people:1' },
        operationType: 'snapshot',
        clusterTime: new Timestamp({ t: 1796622023, i: 1 }),
        ns: { db: 'capdb', coll: 'people' },
        documentKey: { _id: 1 },
        fullDocument: { _id: 1, name: 'a' },
      } as unknown as ChangeStreamDocument;
      const r = recordOf(e, debezium);
      expect(JSON.parse(r.value as string)).to.include({ op: 'r' });
      const decoded = decode(messageOf(r));
      expect(decoded).to.include({ ok: true, changeId: 'snapshot:1796622023.1-1:capdb.people:1' });
      if (!decoded.ok) return;
      const got = decoded.event as unknown as Document;
      expect(got.operationType).to.equal('snapshot');
      expect(got).not.to.have.property('wallTime');
      expect(canonical(got.fullDocument)).to.equal(canonical({ _id: 1, name: 'a' }));
    });

    it('falls back to op and the key when only the change-id header is there', () => {
      const cases: [ChangeStreamDocument, string][] = [
        [event({ operationType: 'insert', documentKey: { _id: 1.5 }, fullDocument: { _id: 1.5 } }), 'insert'],
        [
          event({
            operationType: 'update',
            documentKey: { _id: 1.5 },
            updateDescription: { updatedFields: { a: 1 }, removedFields: [] },
          }),
          'update',
        ],
        [
          event({ operationType: 'replace', documentKey: { _id: 1.5 }, fullDocument: { _id: 1.5 } }),
          'replace',
        ],
        [event({ operationType: 'delete', documentKey: { _id: 1.5 } }), 'delete'],
      ];
      for (const [e, operationType] of cases) {
        const r = recordOf(e, debezium);
        const headers = { [RecordHeader.changeId]: r.headers[RecordHeader.changeId]! };
        const decoded = decode(kafkaMessage({ key: r.key, value: r.value, headers }));
        if (!decoded.ok) throw new Error(decoded.error);
        const got = decoded.event as unknown as Document;
        expect(got.operationType, operationType).to.equal(operationType);
        expect(got.documentKey._id).to.be.instanceOf(Double);
        expect((got.documentKey._id as Double).value).to.equal(1.5);
        expect(got.ns).to.deep.equal({ db: 'capdb', coll: 'people' });
        expect(got).not.to.have.property('clusterTime');
      }
    });

    it('reads a value with a bare NaN as decode-failed when the event is read', () => {
      const e = event({ operationType: 'insert', fullDocument: { _id: 1, x: NaN }, documentKey: { _id: 1 } });
      const r = recordOf(e, debezium);
      expect(JSON.parse(r.value as string).after).to.contain('"x": NaN');
      const decoded = decode(messageOf(r));
      expect(decoded.ok, 'the envelope itself is JSON').to.equal(true);
      if (!decoded.ok) return;
      expect(() => decoded.event)
        .to.throw(ChangeEventDecodeError)
        .that.is.instanceOf(PermanentHandlerError)
        .with.property('message')
        .that.matches(/not a Debezium change event/);
    });

    it('reports decode-failed for a value that is not a Debezium envelope', () => {
      const e = event({ operationType: 'delete', documentKey: { _id: 1 } });
      const r = recordOf(e, debezium);
      const relayValue = recordOf(e, relay).value;
      for (const value of [relayValue, '[1]', '{"op": "c", "source": null}', '{nope']) {
        const decoded = decode(kafkaMessage({ key: r.key, value, headers: r.headers }));
        expect(decoded, String(value)).to.include({
          ok: false,
          reason: 'decode-failed',
          changeId: changeIdOfEvent(e),
        });
      }
    });
  });

  describe('debezium, without the change-id header', () => {
    const message = /Debezium records carry no change ID.*"change-id" header/;

    it('reports no-change-id for a record of the real connector, never using its key', () => {
      for (const r of captured.filter((c) => !c.tombstone)) {
        const decoded = decode(kafkaMessage({ key: r.key, value: envelopeOf(r) }));
        expect(decoded, r.key).to.include({ ok: false, reason: 'no-change-id', changeId: null });
        if (decoded.ok) return;
        expect(decoded.error).to.match(message);
      }
    });

    it('reports no-change-id for a relay record whose change-id header is gone', () => {
      const r = recordOf(
        event({ operationType: 'insert', fullDocument: { _id: 1 }, documentKey: { _id: 1 } }),
        debezium,
      );
      for (const headers of [
        withoutHeaders(r.headers, RecordHeader.changeId),
        { [RecordHeader.changeId]: ' ' },
      ]) {
        const decoded = decode(kafkaMessage({ key: r.key, value: r.value, headers }));
        expect(decoded).to.include({ ok: false, reason: 'no-change-id', changeId: null });
        if (!decoded.ok) expect(decoded.error).to.match(message);
      }
      const tombstone = tombstoneFor(r);
      const decoded = decode(
        kafkaMessage({
          key: tombstone.key,
          value: null,
          headers: withoutHeaders(r.headers, RecordHeader.changeId),
        }),
      );
      expect(decoded).to.include({ ok: false, reason: 'no-change-id' });
    });

    it("reads the real connector's records once given a change-id header (a bare NaN fails on read)", () => {
      const withId = (r: CapturedRecord): DecodedRecord =>
        decode(
          kafkaMessage({ key: r.key, value: envelopeOf(r), headers: { [RecordHeader.changeId]: '82AA' } }),
        );
      for (const r of captured.filter((c) => !c.tombstone)) {
        const decoded = withId(r);
        if (!decoded.ok) throw new Error(decoded.error);
        if (r.after?.includes('NaN')) expect(() => decoded.event, r.key).to.throw(ChangeEventDecodeError);
        else expect(decoded.event._id, r.key).to.deep.equal({ _data: '82AA' });
      }
      const got = withId(captured.find((c) => c.key.includes('$date'))!);
      if (!got.ok) return;
      const e = got.event as unknown as Document;
      expect(e.operationType).to.equal('insert');
      expect(e.ns).to.deep.equal({ db: 'capdb', coll: 'people5' });
      expect((e.documentKey._id as Date).toISOString()).to.equal('2021-02-03T00:00:00.000Z');
      expect((e.fullDocument._id as Date).toISOString()).to.equal('2021-02-03T00:00:00.000Z');
      const update = withId(captured.find((c) => c.op === 'u' && c.after?.includes('when'))!);
      if (!update.ok) return;
      expect((update.event as unknown as Document).updateDescription.removedFields).to.deep.equal(['nul']);
    });
  });

  describe('changeIdOf (re-drive reads dead letters with it)', () => {
    const kafkaConnectKey = '{"_id": {"_data": "8263AB"}}';
    const contentType = (format: 'debezium' | 'mongo-kafka-connect') => ({
      [RecordHeader.contentType]: contentTypeFor('relaxed', format),
    });

    it('takes the header first in every format', () => {
      for (const headers of [{}, contentType('debezium'), contentType('mongo-kafka-connect')]) {
        expect(changeIdOf('{"id":"1"}', { ...headers, [RecordHeader.changeId]: '82CD' })).to.equal('82CD');
      }
    });

    it("reads the MongoDB connector's key, and never a Debezium key", () => {
      expect(changeIdOf(Buffer.from(kafkaConnectKey), {})).to.equal('8263AB');
      expect(changeIdOf(kafkaConnectKey, contentType('mongo-kafka-connect'))).to.equal('8263AB');
      expect(changeIdOf('82AB', contentType('mongo-kafka-connect'))).to.equal(null);
      expect(changeIdOf('{"id":"1"}', contentType('debezium'))).to.equal(null);
      expect(changeIdOf(kafkaConnectKey, { [RecordHeader.contentType]: contentTypeFor('relaxed') })).to.equal(
        kafkaConnectKey,
      );
    });
  });

  describe('relay format', () => {
    it('decodes as before, with and without the content-type header', () => {
      const e = event({ operationType: 'insert', fullDocument: typed, documentKey: { _id: oid } });
      const r = recordOf(e, relay);
      expect(r.headers[RecordHeader.contentType]).to.equal(contentTypeFor('relaxed'));
      for (const headers of [r.headers, withoutHeaders(r.headers, RecordHeader.contentType), {}]) {
        const decoded = decode(kafkaMessage({ key: r.key, value: r.value, headers }));
        expect(decoded).to.include({ ok: true, changeId: changeIdOfEvent(e), tombstone: false });
        if (!decoded.ok) return;
        expect(canonical(decoded.event)).to.equal(
          canonical(BSON.EJSON.parse(r.value as string, { relaxed: false })),
        );
      }
    });

    it('keeps the key as the change ID and the old messages', () => {
      expect(decode(kafkaMessage({ key: '82AA', value: '{"hello":1}' }))).to.deep.include({
        ok: false,
        reason: 'decode-failed',
        changeId: '82AA',
        error:
          'value is not a change event in Extended JSON: the value has no string "operationType": not a change event',
      });
      expect(decode(kafkaMessage({ value: '{"hello":1}' }))).to.deep.include({
        ok: false,
        reason: 'no-change-id',
        error: 'record has neither a key nor a "change-id" header',
      });
      // A change event with a string op and an object source is still a change event.
      const value = '{"_id":{"_data":"82AB"},"operationType":"insert","op":"c","source":{}}';
      expect(decode(kafkaMessage({ key: '82AB', value }))).to.include({ ok: true, changeId: '82AB' });
    });

    it('keeps the relay format when a content-type header says so, whatever the key', () => {
      const headers = { [RecordHeader.contentType]: contentTypeFor('canonical') };
      const value = '{"_id":{"_data":"82AB"},"operationType":"insert"}';
      const key = '{"_id": {"_data": "82AB"}}';
      expect(decode(kafkaMessage({ key, value, headers }))).to.include({ ok: true, changeId: key });
    });
  });
});
