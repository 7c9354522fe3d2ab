import { expect } from 'chai';
import { BSON, type ChangeStreamDocument } from 'mongodb';
import { partitionFor } from '../../../../src/pipeline/murmur2.js';
import { ChangeConverter, publishBytes, type ReadItem } from '../../../../src/pipeline/readItem.js';
import {
  changeIdOf,
  deadLetterFor,
  toRecord,
  tombstoneFor,
  type RecordOptions,
} from '../../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../../src/pipeline/topicRouter.js';
import { stateTopicConfig } from '../../../../src/sink/topicDirectory.js';

const token = (n: number) => ({ _data: `8265F1A2B3${String(n).padStart(8, '0')}2B022C0100296E5A1004` });
const id = new BSON.ObjectId('64b7f0c2a1b2c3d4e5f60718');
const change = (operationType: string, n: number, extra: Record<string, unknown> = {}) =>
  ({
    _id: token(n),
    operationType,
    clusterTime: new BSON.Timestamp({ t: 1_700_000_000, i: n }),
    ns: { db: 'shop', coll: 'orders' },
    documentKey: { _id: id },
    ...extra,
  }) as unknown as ChangeStreamDocument;
const byDocument: RecordOptions = { format: 'relaxed', partitionBy: 'document', key: 'document' };
const router = new TopicRouter('mongo.{db}.{coll}', { level: 'database', db: 'shop' });
const DOC = 'shop.orders\u0000{"_id":{"$oid":"64b7f0c2a1b2c3d4e5f60718"}}';

describe('state-topic records (RELAY_KEY=document, issue 15 item 4)', () => {
  describe('toRecord', () => {
    it('keys by namespace + NUL + the canonical Extended JSON of documentKey, the partition key itself', () => {
      const r = toRecord(change('update', 1), token(1), router, byDocument);
      expect(r.key).to.equal(DOC);
      expect(r.partitionKey.toString()).to.equal(DOC);
      // Kafka's default partitioner (murmur2 of the key bytes) agrees with the relay's partition.
      for (const partitions of [1, 3, 12])
        expect(partitionFor(Buffer.from(r.key), partitions)).to.equal(
          partitionFor(r.partitionKey, partitions),
        );
    });

    it('keeps the change ID in the change-id header, where changeIdOf reads it', () => {
      const r = toRecord(change('update', 1), token(1), router, byDocument);
      expect(r.headers['change-id']).to.equal(token(1)._data);
      expect(changeIdOf(r)).to.equal(token(1)._data);
    });

    it('keys the same _id of two collections apart (a topic may receive several namespaces)', () => {
      const shared = new TopicRouter('all-changes', { level: 'database', db: 'shop' });
      const orders = toRecord(change('insert', 1), token(1), shared, byDocument);
      const items = toRecord(
        change('insert', 2, { ns: { db: 'shop', coll: 'items' } }),
        token(2),
        shared,
        byDocument,
      );
      expect(orders.topic).to.equal(items.topic);
      expect(orders.key).to.not.equal(items.key);
    });

    it('keys events without a document key by their namespace alone (one key per collection or database)', () => {
      const drop = toRecord(change('drop', 3, { documentKey: undefined }), token(3), router, byDocument);
      expect(drop.key).to.equal('shop.orders\u0000');
      const dropDatabase = toRecord(
        change('dropDatabase', 4, { documentKey: undefined, ns: { db: 'shop' } }),
        token(4),
        router,
        byDocument,
      );
      expect(dropDatabase.key).to.equal('shop\u0000');
      const invalidate = toRecord(
        change('invalidate', 5, { documentKey: undefined, ns: undefined }),
        token(5),
        router,
        byDocument,
      );
      expect(invalidate.key).to.equal('\u0000');
    });

    it('keeps the change ID as key by default', () => {
      const r = toRecord(change('update', 1), token(1), router, {
        format: 'relaxed',
        partitionBy: 'document',
      });
      expect(r.key).to.equal(token(1)._data);
    });
  });

  describe('tombstoneFor', () => {
    it('has the delete record’s topic, key, partition key and headers, a null value, and its size', () => {
      const del = toRecord(change('delete', 6), token(6), router, byDocument);
      const t = tombstoneFor(del);
      expect(t.value).to.equal(null);
      expect({ ...t, value: del.value, size: del.size }).to.deep.equal(del);
      let expected = Buffer.byteLength(del.key);
      for (const [k, v] of Object.entries(del.headers))
        expected += Buffer.byteLength(k) + Buffer.byteLength(v);
      expect(t.size).to.equal(expected);
    });
  });

  describe('ChangeConverter', () => {
    const converter = (record: RecordOptions) =>
      new ChangeConverter({ router, record, operationTypes: null, deadLetterTopic: 'relay.dead-letter' });
    const read = (
      c: ChangeConverter,
      op: string,
      n: number,
      deadLetter?: { reason: 'pre-image-missing'; detail: string },
    ) =>
      c.convert({
        kind: 'change',
        event: change(op, n),
        token: token(n),
        readAt: 1,
        ...(deadLetter ? { deadLetter } : {}),
      });
    const publishItem = (item: ReadItem) => {
      if (item.kind !== 'publish') throw new Error(`expected a publish item, got ${item.kind}`);
      return item;
    };

    it('follows every delete, and nothing else, with its tombstone', () => {
      const c = converter(byDocument);
      for (const op of ['insert', 'update', 'replace', 'drop'])
        expect(publishItem(read(c, op, 1)).tombstone, op).to.equal(undefined);
      const del = publishItem(read(c, 'delete', 2));
      expect(del.tombstone).to.deep.equal(tombstoneFor(del.record));
      expect(publishBytes(del)).to.equal(del.record.size + del.tombstone!.size);
    });

    it('writes no tombstone with the default key', () => {
      const c = converter({ format: 'relaxed', partitionBy: 'document' });
      expect(publishItem(read(c, 'delete', 2)).tombstone).to.equal(undefined);
    });

    it('still writes the tombstone to the state topic when the delete itself is dead-lettered', () => {
      const c = converter(byDocument);
      const del = publishItem(read(c, 'delete', 7, { reason: 'pre-image-missing', detail: 'gone' }));
      expect(del.record.topic).to.equal('relay.dead-letter');
      expect(del.tombstone?.topic).to.equal('mongo.shop.orders');
      expect(del.tombstone?.key).to.equal(DOC);
      expect(del.tombstone?.value).to.equal(null);
    });
  });

  it('creates state topics compacted, but never the dead-letter topic (its records share document keys)', () => {
    const configFor = stateTopicConfig('relay.dead-letter');
    expect(configFor('mongo.shop.orders')).to.deep.equal({ 'cleanup.policy': 'compact' });
    expect(configFor('relay.dead-letter')).to.deep.equal({});
  });

  it('names the change ID (not the document key) in a dead-letter record', () => {
    const r = toRecord(change('update', 8), token(8), router, byDocument);
    const dl = deadLetterFor(r, 'too-large', 'too big', 'dlq');
    expect(JSON.parse(String(dl.value))).to.deep.include({ changeId: token(8)._data });
  });
});
