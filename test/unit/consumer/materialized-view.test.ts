import { expect } from 'chai';
import { Int32, Long, ObjectId, Timestamp } from 'mongodb';

import {
  assertExactNumbers,
  compareChangePosition,
  inexactIntegerPath,
  olderThan,
  viewDocumentFor,
  type ChangePosition,
} from '../../../examples/materialized-view/view.js';
import type { RecordMetadata } from '../../../src/consumer/types.js';
import { PermanentHandlerError } from '../../../src/consumer/errors.js';
import { ChangeEventFactory } from '../../support/change-records.js';

function at(t: number, i: number, changeId: string): ChangePosition {
  return { clusterTime: new Timestamp({ t, i }), changeId };
}

describe('examples/materialized-view ordering', () => {
  describe('compareChangePosition', () => {
    it('orders by cluster time seconds first', () => {
      expect(compareChangePosition(at(10, 9, '82FF'), at(11, 1, '8200'))).to.equal(-1);
      expect(compareChangePosition(at(11, 1, '8200'), at(10, 9, '82FF'))).to.equal(1);
    });

    it('then by cluster time increment', () => {
      expect(compareChangePosition(at(10, 2, '82FF'), at(10, 3, '8200'))).to.equal(-1);
    });

    it('then by the resume token string for changes of one transaction', () => {
      expect(compareChangePosition(at(10, 2, '82A0'), at(10, 2, '82B0'))).to.equal(-1);
      expect(compareChangePosition(at(10, 2, '82B0'), at(10, 2, '82A0'))).to.equal(1);
      expect(compareChangePosition(at(10, 2, '82A0'), at(10, 2, '82A0'))).to.equal(0);
    });

    it('compares increments above 2^31 as unsigned', () => {
      expect(compareChangePosition(at(10, 0x7fffffff, '82'), at(10, 0x80000000, '82'))).to.equal(-1);
    });

    it('agrees with the order of events from one stream', () => {
      const factory = new ChangeEventFactory({ db: 'd', coll: 'c', startSeconds: 100 });
      const positions = Array.from({ length: 2_500 }, () => {
        const event = factory.insert({ _id: 1 });
        return {
          clusterTime: event.clusterTime as Timestamp,
          changeId: (event._id as { _data: string })._data,
        };
      });
      for (let index = 1; index < positions.length; index++) {
        expect(compareChangePosition(positions[index - 1]!, positions[index]!)).to.equal(-1);
      }
    });
  });

  describe('olderThan', () => {
    it('matches no applied change, an older cluster time, or the same cluster time with a smaller token', () => {
      const position = at(10, 2, '82B0');
      expect(olderThan(position)).to.deep.equal({
        $or: [
          { _applied: { $exists: false } },
          { '_applied.clusterTime': { $lt: position.clusterTime } },
          { '_applied.clusterTime': position.clusterTime, '_applied.changeId': { $lt: '82B0' } },
        ],
      });
    });
  });

  describe('viewDocumentFor', () => {
    const factory = new ChangeEventFactory({ db: 'd', coll: 'c', startSeconds: 100 });
    const id = new ObjectId();

    it('takes the full document and records the applied change', () => {
      const event = factory.update({ _id: id, qty: 3 }, { qty: 3 });
      const doc = viewDocumentFor(event);
      expect(doc).to.include({ _id: id, qty: 3 });
      expect(doc?._applied.operationType).to.equal('update');
      expect(doc?._applied.changeId).to.equal((event._id as { _data: string })._data);
    });

    it('turns a delete into a tombstone', () => {
      const now = new Date();
      expect(viewDocumentFor(factory.delete(id), now)).to.include({
        _id: id,
        _deleted: true,
        _deletedAt: now,
      });
    });

    it('ignores events that change no document', () => {
      const drop = { ...factory.delete(id), operationType: 'drop' } as never;
      expect(viewDocumentFor(drop)).to.equal(undefined);
    });

    it('refuses an update without fullDocument as permanent', () => {
      const event = factory.update({ _id: id }, {});
      delete (event as { fullDocument?: unknown }).fullDocument;
      expect(() => viewDocumentFor(event)).to.throw(PermanentHandlerError, /updateLookup/);
    });
  });

  describe('exact numbers', () => {
    const big = Long.fromString('9007199254740992');

    it('inexactIntegerPath finds an integer of magnitude 2^53 or more, anywhere in the document', () => {
      expect(inexactIntegerPath({ a: new Int32(1), b: Long.fromString('9007199254740991') })).to.equal(
        undefined,
      );
      expect(inexactIntegerPath({ a: { b: [new Int32(1), big] } })).to.equal('a.b[1]');
      expect(inexactIntegerPath({ n: big.negate() })).to.equal('n');
    });

    it('assertExactNumbers refuses such a relaxed record as permanent, and lets canonical ones through', () => {
      const event = { operationType: 'insert', fullDocument: { total: big } } as never;
      const record = (format: string) =>
        ({
          headers: { 'content-type': `application/vnd.mongodb.change-event+json; format=${format}` },
        }) as unknown as RecordMetadata;
      expect(() => assertExactNumbers(event, record('relaxed')))
        .to.throw(PermanentHandlerError)
        .with.property('message')
        .that.contains('fullDocument.total')
        .and.contains('RELAY_VALUE_FORMAT=canonical');
      expect(() => assertExactNumbers(event, record('canonical'))).to.not.throw();
    });
  });
});
