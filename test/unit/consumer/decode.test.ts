import { expect } from 'chai';
import { BSON, Decimal128, Double, Int32, Long, ObjectId, Timestamp } from 'mongodb';

import { RecordHeader } from '../../../src/contract/record.js';
import {
  ChangeEventDecodeError,
  changeIdOf,
  decodeHeaders,
  decodeRecord,
  parseChangeEvent,
} from '../../../src/consumer/decode.js';
import { PermanentHandlerError } from '../../../src/consumer/errors.js';
import { ChangeEventFactory, richDocument, toRelayRecord } from '../../support/change-records.js';
import { kafkaMessage } from './kafkaMessage.js';

describe('consumer/decode', () => {
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders', startSeconds: 1_700_000_000 });

  describe('parseChangeEvent', () => {
    for (const format of ['relaxed', 'canonical'] as const) {
      it(`turns a ${format} Extended JSON change event back into BSON types`, () => {
        const doc = richDocument(7);
        const record = toRelayRecord(factory.insert(doc), { format });
        const event = parseChangeEvent(record.value, { relaxed: false });

        expect(event.operationType).to.equal('insert');
        if (event.operationType !== 'insert') return;
        expect(event.clusterTime).to.be.instanceOf(Timestamp);
        expect(event.documentKey._id).to.be.instanceOf(ObjectId);
        expect((event.documentKey._id as ObjectId).equals(doc._id)).to.equal(true);
        expect(event.fullDocument.price).to.be.instanceOf(Decimal128);
        expect(event.fullDocument.price.toString()).to.equal('7.10');
        expect(event.fullDocument.createdAt).to.be.instanceOf(Date);
        expect((event.fullDocument.createdAt as Date).toISOString()).to.equal('2024-01-01T00:00:07.000Z');
        expect((event as { wallTime?: unknown }).wallTime).to.be.instanceOf(Date);
        expect((event._id as { _data: string })._data).to.equal(record.key);
      });
    }

    it('keeps numbers as BSON wrappers with relaxed: false, so 64-bit values keep their precision', () => {
      const event = parseChangeEvent(
        toRelayRecord(factory.insert(richDocument(3)), { format: 'canonical' }).value,
        { relaxed: false },
      );
      if (event.operationType !== 'insert') throw new Error('expected insert');
      expect(event.fullDocument.seq).to.be.instanceOf(Int32);
      expect(event.fullDocument.big).to.be.instanceOf(Long);
      expect((event.fullDocument.big as Long).toString()).to.equal('9007199254740993');
    });

    it('reads plain JSON numbers of relaxed output as Int32/Double wrappers', () => {
      const event = parseChangeEvent(
        BSON.EJSON.stringify({
          _id: { _data: '82' },
          operationType: 'insert',
          fullDocument: { a: 1, b: 2.5 },
        }),
        { relaxed: false },
      );
      expect(
        (event as unknown as { fullDocument: { a: unknown; b: unknown } }).fullDocument.a,
      ).to.be.instanceOf(Int32);
      expect(
        (event as unknown as { fullDocument: { a: unknown; b: unknown } }).fullDocument.b,
      ).to.be.instanceOf(Double);
    });

    it('gives JavaScript numbers with relaxed: true', () => {
      const event = parseChangeEvent(
        '{"_id":{"_data":"82"},"operationType":"insert","fullDocument":{"a":1}}',
        {
          relaxed: true,
        },
      );
      expect((event as unknown as { fullDocument: { a: unknown } }).fullDocument.a).to.equal(1);
    });

    it('rejects JSON that is not a change event', () => {
      expect(() => parseChangeEvent('[1,2]', { relaxed: false })).to.throw(/not a JSON object/);
      expect(() => parseChangeEvent('{"_id":{"_data":"82"}}', { relaxed: false })).to.throw(/operationType/);
      expect(() => parseChangeEvent('{"operationType":"insert"}', { relaxed: false })).to.throw(/_id/);
      expect(() => parseChangeEvent('{nope', { relaxed: false })).to.throw();
    });
  });

  describe('changeIdOf', () => {
    it('takes the change-id header (with RELAY_KEY=document the key is the document, not the change)', () => {
      expect(
        changeIdOf(Buffer.from('shop.orders\u0000{"_id":1}'), { [RecordHeader.changeId]: '82CD' }),
      ).to.equal('82CD');
      expect(changeIdOf(null, { [RecordHeader.changeId]: '82CD' })).to.equal('82CD');
    });

    it('falls back to the key when the header is missing or empty', () => {
      expect(changeIdOf(Buffer.from('82AB'), {})).to.equal('82AB');
      expect(changeIdOf('82AB', { [RecordHeader.changeId]: ' ' })).to.equal('82AB');
    });

    it('returns null when there is neither', () => {
      expect(changeIdOf(null, {})).to.equal(null);
      expect(changeIdOf(Buffer.from('  '), { [RecordHeader.changeId]: '' })).to.equal(null);
    });
  });

  describe('decodeHeaders', () => {
    it('decodes buffers and strings as UTF-8 and takes the last of repeated values', () => {
      expect(
        decodeHeaders({ a: Buffer.from('x'), b: 'y', c: [Buffer.from('1'), '2'], d: undefined }),
      ).to.deep.equal({
        a: 'x',
        b: 'y',
        c: '2',
      });
    });
  });

  describe('decodeRecord', () => {
    const badWrapper = JSON.stringify({
      _id: { _data: '82AB' },
      operationType: 'insert',
      fullDocument: { _id: { $oid: 'not an object id' } },
    });

    it('checks the shape at once but revives the Extended JSON only when the event is first read, once', () => {
      const record = toRelayRecord(factory.insert(richDocument(2)));
      const decoded = decodeRecord('t1', 0, kafkaMessage(record), { relaxed: false });
      if (!decoded.ok) throw new Error('expected ok');
      expect(decoded.event).to.equal(decoded.event);
      expect(decoded.event.operationType).to.equal('insert');
    });

    it('throws ChangeEventDecodeError (permanent) on reading an event whose Extended JSON does not parse', () => {
      const decoded = decodeRecord('t1', 0, kafkaMessage({ key: '82AB', value: badWrapper }), {
        relaxed: false,
      });
      expect(decoded.ok, 'the shape is that of a change event').to.equal(true);
      if (!decoded.ok) return;
      expect(() => decoded.event)
        .to.throw(ChangeEventDecodeError)
        .that.is.instanceOf(PermanentHandlerError)
        .with.property('message')
        .that.matches(/not a change event in Extended JSON/);
    });

    it('eager (a per-record handler): revives at once, and a value that does not revive fails exactly as when lazy', () => {
      const record = toRelayRecord(factory.insert(richDocument(3)));
      const eager = decodeRecord('t1', 0, kafkaMessage(record), { relaxed: false, eager: true });
      const lazy = decodeRecord('t1', 0, kafkaMessage(record), { relaxed: false });
      if (!eager.ok || !lazy.ok) throw new Error('expected ok');
      expect(eager.event).to.deep.equal(lazy.event);
      for (const value of [badWrapper, '{"_id": {"_data": "82AB"}}', 'not json']) {
        const message = kafkaMessage({ key: '82AB', value });
        const a = decodeRecord('t1', 0, message, { relaxed: false, eager: true });
        const b = decodeRecord('t1', 0, message, { relaxed: false });
        const outcome = (d: typeof a): unknown => {
          if (!d.ok) return { reason: d.reason, error: d.error };
          try {
            return d.event;
          } catch (error) {
            return { thrown: (error as Error).name, message: (error as Error).message };
          }
        };
        expect(outcome(a), value).to.deep.equal(outcome(b));
      }
    });

    it('returns the change ID, the event and the record metadata', () => {
      const record = toRelayRecord(factory.delete(new ObjectId()));
      const decoded = decodeRecord('t1', 3, kafkaMessage(record), { relaxed: false });
      expect(decoded.ok).to.equal(true);
      if (!decoded.ok) return;
      expect(decoded.changeId).to.equal(record.key);
      expect(decoded.event.operationType).to.equal('delete');
      expect(decoded.record).to.include({
        topic: 't1',
        partition: 3,
        offset: '41',
        key: record.key,
        timestamp: '1700000000000',
      });
      expect(decoded.record.headers).to.deep.equal(record.headers);
    });

    it('uses the change-id header for a record without key', () => {
      const record = toRelayRecord(factory.delete(new ObjectId()));
      const decoded = decodeRecord('t1', 0, kafkaMessage({ ...record, key: null }), { relaxed: false });
      expect(decoded.ok && decoded.changeId).to.equal(record.key);
      expect(decoded.record.key).to.equal(null);
    });

    it('reports no-change-id for a record with neither key nor change-id header', () => {
      const record = toRelayRecord(factory.delete(new ObjectId()));
      const headers = { ...record.headers };
      delete headers[RecordHeader.changeId];
      const decoded = decodeRecord('t1', 0, kafkaMessage({ value: record.value, headers }), {
        relaxed: false,
      });
      expect(decoded).to.include({ ok: false, reason: 'no-change-id', changeId: null });
    });

    it('reports decode-failed with the change ID for a value that is not a change event', () => {
      const decoded = decodeRecord('t1', 0, kafkaMessage({ key: '82AA', value: '{"hello":1}' }), {
        relaxed: false,
      });
      expect(decoded).to.include({ ok: false, reason: 'decode-failed', changeId: '82AA' });
      const empty = decodeRecord('t1', 0, kafkaMessage({ key: '82AA', value: null }), { relaxed: false });
      expect(empty).to.include({ ok: false, reason: 'decode-failed' });
    });
  });
});
