import { expect } from 'chai';
import { BSON, type ChangeStreamDocument } from 'mongodb';
import { toRecord } from '../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';

const token = { _data: '8265F1A2B3000000012B022C0100296E5A1004ABCDEF' };
const router = new TopicRouter('mongo.{db}.{coll}', { level: 'database', db: 'shop' });
const options = { format: 'relaxed', partitionBy: 'document' } as const;
const base = {
  _id: token,
  operationType: 'insert',
  ns: { db: 'shop', coll: 'orders' },
  documentKey: { _id: 1 },
};

describe('the record timestamp (KAFKA_RECORD_TIMESTAMP=event)', () => {
  it("is the event's wallTime, to the millisecond", () => {
    const event = {
      ...base,
      clusterTime: new BSON.Timestamp({ t: 1700000000, i: 3 }),
      wallTime: new Date('2023-11-14T22:13:20.123Z'),
    } as unknown as ChangeStreamDocument;
    expect(toRecord(event, token, router, options).eventTimeMs).to.equal(
      Date.parse('2023-11-14T22:13:20.123Z'),
    );
  });

  it('is the clusterTime seconds when the server sends no wallTime (before MongoDB 6.0)', () => {
    const event = {
      ...base,
      clusterTime: new BSON.Timestamp({ t: 1700000000, i: 3 }),
    } as unknown as ChangeStreamDocument;
    expect(toRecord(event, token, router, options).eventTimeMs).to.equal(1700000000 * 1000);
  });

  it('is absent when the event carries neither (the send time is used)', () => {
    expect(toRecord(base as unknown as ChangeStreamDocument, token, router, options)).to.not.have.property(
      'eventTimeMs',
    );
  });
});
