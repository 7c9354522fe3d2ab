import { expect } from 'chai';
import { BSON } from 'mongodb';
import { collectTopic, kafkaClient } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, type RelayProcess } from '../../support/relayProcess.js';
import { partitionFor } from '../../../src/pipeline/murmur2.js';
import { waitFor } from '../../support/wait.js';

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
      // The topic may hold other tests' records too: wait for this test's change IDs, not for a count.
      const keys = truth.map((e) => (e._id as { _data: string })._data);
      const got = await waitFor(
        () => keys.every((k) => collector.messages.some((m) => m.key === k)) && collector.messages,
        { timeoutMs: 60_000, message: () => `the ${keys.length} records of this test` },
      );
      const dkOfId = BSON.EJSON.stringify({ _id: id }, { relaxed: false });
      const sorted = got
        .filter((r) => keys.includes(r.key ?? ''))
        .sort((a, b) => Number(a.offset) - Number(b.offset) || a.partition - b.partition);
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
        BSON.EJSON.parse(sorted.find((r) => r.headers['operation-type'] === op)!.value!, {
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
      const docRecords = sorted.filter((r) => r.headers['document-key'] === dkOfId);
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
    const orders = ctx.mongo.db(ctx.db).collection<{ _id: string }>('orders');
    await orders.insertOne({ _id: 'before-drop' });
    await orders.drop(); // drop + invalidate: the relay reopens after the invalidate
    await orders.insertOne({ _id: 'after-drop' }); // re-creates the collection
    const collector = await collectTopic(ctx.topic('orders'));
    const dk = (id: string) => BSON.EJSON.stringify({ _id: id }, { relaxed: false });
    try {
      // Change IDs sort in the order MongoDB wrote the changes: insert, drop, invalidate, insert. Records of
      // several partitions arrive in any order, so wait for all four.
      const ofThisTest = () => {
        const find = (id: string) => collector.messages.find((m) => m.headers['document-key'] === dk(id));
        const [before, after] = [find('before-drop'), find('after-drop')];
        if (!before || !after) return [];
        const between = collector.messages.filter(
          (m) =>
            ['drop', 'invalidate'].includes(m.headers['operation-type'] ?? '') &&
            m.key! > before.key! &&
            m.key! < after.key!,
        );
        return ['insert', ...between.map((m) => m.headers['operation-type']).sort(), 'insert'];
      };
      const seen = await waitFor(() => ofThisTest().length === 4 && ofThisTest(), {
        timeoutMs: 60_000,
        message: () => `insert, drop, invalidate, insert (got ${JSON.stringify(ofThisTest())})`,
      });
      expect(seen).to.deep.equal(['insert', 'drop', 'invalidate', 'insert']);
      expect(relay.child.exitCode, 'the relay kept running').to.equal(null);
    } finally {
      await collector.stop();
    }
  });
});
