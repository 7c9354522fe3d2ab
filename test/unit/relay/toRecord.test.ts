import { expect } from 'chai';
import { BSON, type ChangeStreamDocument } from 'mongodb';
import { toRecord, deadLetterFor } from '../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';

const token = { _data: '8265F1A2B3000000012B022C0100296E5A1004ABCDEF' };
const id = new BSON.ObjectId('64b7f0c2a1b2c3d4e5f60718');
const event = {
  _id: token,
  operationType: 'update',
  clusterTime: new BSON.Timestamp({ t: 1700000000, i: 3 }),
  wallTime: new Date('2023-11-14T22:13:20Z'),
  ns: { db: 'shop', coll: 'orders' },
  documentKey: { _id: id },
  updateDescription: { updatedFields: { total: BSON.Decimal128.fromString('9.99') }, removedFields: [] },
  fullDocument: { _id: id, total: BSON.Decimal128.fromString('9.99') },
} as unknown as ChangeStreamDocument;

describe('toRecord (the Kafka record contract)', () => {
  const router = new TopicRouter('mongo.{db}.{coll}', { level: 'database', db: 'shop' });

  it('keys the record by change ID and describes it in headers', () => {
    const r = toRecord(event, token, router, { format: 'relaxed', partitionBy: 'document' });
    expect(r.topic).to.equal('mongo.shop.orders');
    expect(r.key).to.equal(token._data);
    expect(r.headers).to.deep.equal({
      'change-id': token._data,
      'operation-type': 'update',
      ns: 'shop.orders',
      'document-key': '{"_id":{"$oid":"64b7f0c2a1b2c3d4e5f60718"}}',
      'cluster-time': '1700000000.3',
      'content-type': 'application/vnd.mongodb.change-event+json; format=relaxed',
    });
  });

  it('carries the whole event as Extended JSON that parses back to the same BSON values', () => {
    const r = toRecord(event, token, router, { format: 'canonical', partitionBy: 'document' });
    const back = BSON.EJSON.parse(String(r.value), { relaxed: false }) as Record<string, unknown>;
    expect(back).to.deep.equal(event);
  });

  it('partitions by namespace + document key, or by change ID on request', () => {
    const byDoc = toRecord(event, token, router, { format: 'relaxed', partitionBy: 'document' });
    expect(byDoc.partitionKey.toString()).to.equal(
      'shop.orders\u0000{"_id":{"$oid":"64b7f0c2a1b2c3d4e5f60718"}}',
    );
    const byId = toRecord(event, token, router, { format: 'relaxed', partitionBy: 'change-id' });
    expect(byId.partitionKey.toString()).to.equal(token._data);
  });

  it('counts key, value and headers in the size', () => {
    const r = toRecord(event, token, router, { format: 'relaxed', partitionBy: 'document' });
    expect(r.size).to.be.greaterThan(Buffer.byteLength(r.value) + r.key.length);
  });

  it('routes events without a collection and invalidates without ns to a named topic', () => {
    expect(router.topicFor({ db: 'shop' })).to.equal('mongo.shop._database');
    expect(router.topicFor(undefined)).to.equal('mongo.shop._database');
    const collRouter = new TopicRouter('cdc-{coll}', { level: 'collection', db: 'a', coll: 'b c' });
    expect(collRouter.topicFor(undefined)).to.equal('cdc-b_c');
  });

  it('names the event it replaces in a dead-letter record', () => {
    const r = toRecord(event, token, router, { format: 'relaxed', partitionBy: 'document' });
    const dl = deadLetterFor(r, 'too-large', 'too big', 'dlq');
    expect(dl.topic).to.equal('dlq');
    expect(dl.key).to.equal(token._data);
    expect(JSON.parse(String(dl.value))).to.deep.include({
      changeId: token._data,
      ns: 'shop.orders',
      reason: 'too-large',
      size: r.size,
    });
    expect(dl.headers['dead-letter-reason']).to.equal('too-large');
  });
});
