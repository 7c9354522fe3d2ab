import { expect } from 'chai';
import { BSON } from 'mongodb';
import { collectTopic, kafkaClient } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, type RelayProcess } from '../../support/relayProcess.js';
import { partitionFor } from '../../../src/pipeline/murmur2.js';

describe('relay: the Kafka record of every operation type', function () {
  let ctx: RelayTestContext;
  let relay: RelayProcess;

  before(async function () {
    ctx = await relayTestContext('contract');
    relay = await startRelayReady(ctx.env({ RELAY_WATCH: `${ctx.db}.orders` }));
  });
  after(async () => {
    await killAllRelays();
    await ctx.close();
  });

  it('creates the topic of a collection target at start, so consumers can subscribe before the first change', async () => {
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [ctx.topic('orders')] })).topics;
      expect(meta!.partitions).to.have.length(3); // KAFKA_TOPIC_PARTITIONS of the test environment
    } finally {
      await admin.disconnect();
    }
  });

  it('publishes insert, update, replace, delete, drop and invalidate keyed by change ID, with headers and the document partition', async () => {
    const orders = ctx.mongo
      .db(ctx.db)
      .collection<{ _id: BSON.ObjectId; total: BSON.Decimal128; at?: Date; v?: number }>('orders');
    const id = new BSON.ObjectId();
    const watch = orders.watch([], { fullDocument: 'updateLookup' }); // an independent reader of the truth
    await watch.tryNext(); // open it now: a change stream starts at its first command, not at watch()
    await orders.insertOne({
      _id: id,
      total: BSON.Decimal128.fromString('10.50'),
      at: new Date('2024-01-02T03:04:05Z'),
    });
    await orders.updateOne({ _id: id }, { $set: { v: 2 } });
    await orders.replaceOne({ _id: id }, { total: BSON.Decimal128.fromString('11.00'), v: 3 });
    await orders.deleteOne({ _id: id });
    await orders.drop();
    const truth = [];
    for (let i = 0; i < 6; i++) {
      const ev = await watch.next();
      truth.push(ev);
      if (ev.operationType === 'invalidate') break;
    }
    await watch.close().catch(() => undefined);
    const collector = await collectTopic(ctx.topic('orders'));
    try {
      const got = await collector.waitForCount(truth.length, 60_000);
      const sorted = [...got].sort(
        (a, b) => Number(a.offset) - Number(b.offset) || a.partition - b.partition,
      );
      const ops = truth.map((e) => e.operationType);
      expect(ops).to.deep.equal(['insert', 'update', 'replace', 'delete', 'drop', 'invalidate']);
      const admin = kafkaClient().admin();
      await admin.connect();
      const [meta] = (await admin.fetchTopicMetadata({ topics: [ctx.topic('orders')] })).topics;
      await admin.disconnect();
      const partitions = meta!.partitions.length;
      for (const ev of truth) {
        const changeId = (ev._id as { _data: string })._data;
        const rec = got.find((r) => r.key === changeId);
        expect(rec, `record of ${ev.operationType}`).to.not.equal(undefined);
        const value = BSON.EJSON.parse(rec!.value!, { relaxed: true }) as Record<string, unknown>;
        expect(value.operationType).to.equal(ev.operationType);
        expect(rec!.headers['change-id']).to.equal(changeId);
        expect(rec!.headers['operation-type']).to.equal(ev.operationType);
        expect(rec!.headers['content-type']).to.match(
          /^application\/vnd\.mongodb\.change-event\+json; format=relaxed$/,
        );
        if (ev.operationType !== 'invalidate') {
          expect(rec!.headers.ns).to.equal(`${ctx.db}.orders`);
          expect(value.ns).to.deep.equal({ db: ctx.db, coll: 'orders' });
          const ct = (ev as { clusterTime: BSON.Timestamp }).clusterTime;
          expect(rec!.headers['cluster-time']).to.equal(`${ct.high}.${ct.low}`);
        }
        if ('documentKey' in ev) {
          const dk = BSON.EJSON.stringify(ev.documentKey, { relaxed: false });
          expect(rec!.headers['document-key']).to.equal(dk);
          expect(rec!.partition).to.equal(
            partitionFor(Buffer.from(`${ctx.db}.orders\u0000${dk}`), partitions),
          );
        }
      }
      const byKey = (op: string) =>
        BSON.EJSON.parse(got.find((r) => r.headers['operation-type'] === op)!.value!, {
          relaxed: false,
        }) as Record<string, unknown>;
      expect(byKey('insert').fullDocument).to.deep.equal({
        _id: id,
        total: BSON.Decimal128.fromString('10.50'),
        at: new Date('2024-01-02T03:04:05Z'),
      });
      expect((byKey('update').updateDescription as { updatedFields: unknown }).updatedFields).to.deep.equal({
        v: new BSON.Int32(2),
      });
      expect(byKey('delete').documentKey).to.deep.equal({ _id: id });
      // Per-document order: the document's four changes sit in one partition, in write order.
      const docRecords = sorted.filter((r) => r.headers['document-key']);
      expect(new Set(docRecords.map((r) => r.partition)).size).to.equal(1);
      expect(docRecords.map((r) => r.headers['operation-type'])).to.deep.equal([
        'insert',
        'update',
        'replace',
        'delete',
      ]);
    } finally {
      await collector.stop();
    }
  });

  it('keeps relaying after an invalidate: a re-created collection is picked up with startAfter', async () => {
    const orders = ctx.mongo.db(ctx.db).collection<{ _id: number }>('orders');
    await orders.insertOne({ _id: 1 });
    const collector = await collectTopic(ctx.topic('orders'));
    try {
      await collector.waitForCount(7, 60_000);
      const last = collector.messages.find(
        (m) =>
          m.headers['operation-type'] === 'insert' &&
          m.headers['document-key'] === '{"_id":{"$numberInt":"1"}}',
      );
      expect(last).to.not.equal(undefined);
      expect(relay.child.exitCode).to.equal(null);
    } finally {
      await collector.stop();
    }
  });
});
