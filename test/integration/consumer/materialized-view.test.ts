import { expect } from 'chai';
import { BSON, Double, Int32, Long, ObjectId, Timestamp, type Collection, type Filter } from 'mongodb';

import {
  applyChangeToView,
  startMaterializedView,
  type RunningView,
  type ViewDocument,
} from '../../../examples/materialized-view/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import {
  ConsumerTestKit,
  TEST_DB,
  collectTopic,
  probeTransactions,
  services,
  skipUnless,
  waitFor,
  type Capability,
} from './helpers.js';

function byId(id: ObjectId): Filter<ViewDocument> {
  return { _id: id } as unknown as Filter<ViewDocument>;
}

describe('examples/materialized-view (integration)', function () {
  const kit = new ConsumerTestKit();
  let transactions: Capability;
  let view: Collection<ViewDocument>;
  const running: RunningView[] = [];

  before(async () => {
    await kit.setUp();
    transactions = await probeTransactions(kit.client);
  });
  beforeEach(() => {
    view = kit.db.collection<ViewDocument>(`view_${new ObjectId().toHexString()}`);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });
  after(() => kit.tearDown());

  describe('applyChangeToView', () => {
    const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
    const id = new ObjectId();
    const v1 = factory.insert({ _id: id, status: 'new' });
    const v2 = factory.update({ _id: id, status: 'paid' }, { status: 'paid' });
    const v3 = factory.update({ _id: id, status: 'shipped' }, { status: 'shipped' });
    const gone = factory.delete(id);

    it('upserts the latest state and records the applied change', async () => {
      expect(await applyChangeToView(view, v1)).to.equal('applied');
      expect(await applyChangeToView(view, v2)).to.equal('applied');
      const doc = await view.findOne(byId(id));
      expect(doc).to.include({ status: 'paid' });
      expect(doc?._applied.changeId).to.equal((v2._id as { _data: string })._data);
      expect(doc?._applied.clusterTime).to.be.instanceOf(Timestamp);
    });

    it('never applies an older change over a newer one, and treats a repeated change as stale', async () => {
      expect(await applyChangeToView(view, v3)).to.equal('applied');
      expect(await applyChangeToView(view, v1)).to.equal('stale');
      expect(await applyChangeToView(view, v2)).to.equal('stale');
      expect(await applyChangeToView(view, v3)).to.equal('stale');
      expect(await view.findOne(byId(id))).to.include({ status: 'shipped' });
    });

    it('keeps a tombstone for a delete, so an older change cannot bring the document back', async () => {
      await applyChangeToView(view, v2);
      expect(await applyChangeToView(view, gone)).to.equal('applied');
      expect(await applyChangeToView(view, v3)).to.equal('stale');
      const doc = await view.findOne(byId(id));
      expect(doc).to.include({ _deleted: true });
      expect(doc).to.not.have.property('status');
    });

    it('orders changes of one transaction (same cluster time) by resume token', async () => {
      const time = new Timestamp({ t: 2_000_000_000, i: 1 });
      const first = { ...v2, clusterTime: time, _id: { _data: '82AA01' } } as typeof v2;
      const second = { ...v3, clusterTime: time, _id: { _data: '82AA02' } } as typeof v3;
      expect(await applyChangeToView(view, second)).to.equal('applied');
      expect(await applyChangeToView(view, first)).to.equal('stale');
      expect(await view.findOne(byId(id))).to.include({ status: 'shipped' });
    });
  });

  describe('the program', () => {
    async function runExample(mode: 'idempotent-handler' | 'transactional') {
      const topic = await kit.topic(`view-${mode}`, 2);
      const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
      const [a, b, c] = [new ObjectId(), new ObjectId(), new ObjectId()];
      const aV1 = factory.insert({ _id: a, qty: 1 });
      const bV1 = factory.insert({ _id: b, qty: 10 });
      const aV2 = factory.update({ _id: a, qty: 2 }, { qty: 2 });
      const cV1 = factory.insert({ _id: c, qty: 100 });
      const bGone = factory.delete(b);
      const aV3 = factory.replace({ _id: a, qty: 3, note: 'replaced' });
      const cV2 = factory.update({ _id: c, qty: 101 }, { qty: 101 });
      // In Kafka order, with a re-published duplicate and an older change of c arriving after a newer one.
      const events = [aV1, bV1, aV2, cV2, cV1, bGone, aV2, aV3];
      await kit.produce(
        topic,
        events.map((event) => toRelayRecord(event, { partitions: 2, format: 'canonical' })),
      );

      const viewColl = `view_${topic.replace(/[^a-zA-Z0-9]/g, '_')}`;
      running.push(
        await startMaterializedView({
          brokers: services().brokers.split(','),
          mongoUri: services().mongoUri,
          topics: [topic],
          viewDb: TEST_DB,
          viewColl,
          groupId: `group-${topic}`,
          mode,
          partitionsConcurrently: 2,
          tombstoneTtlSeconds: 3_600,
          logLevel: 'silent',
        }),
      );
      const target = kit.db.collection<ViewDocument>(viewColl);
      await waitFor(
        async () => {
          const docs = await target.find().toArray();
          return docs.length === 3 && docs.every((doc) => doc._applied);
        },
        { timeoutMs: 30_000, message: 'three view documents' },
      );
      await waitFor(async () => (await target.findOne(byId(a)))?.qty === 3, {
        message: 'a at its latest state',
      });
      await waitFor(async () => (await target.findOne(byId(b)))?._deleted === true, {
        message: 'b deleted',
      });
      expect(await target.findOne(byId(a), { projection: { _applied: 0 } })).to.deep.equal({
        _id: a,
        qty: 3,
        note: 'replaced',
      });
      expect(Number((await target.findOne(byId(c)))?.qty), 'c keeps its newer state').to.equal(101);
      const indexes = await target.listIndexes().toArray();
      expect(indexes.find((index) => index.name === 'tombstone_ttl')).to.include({
        expireAfterSeconds: 3_600,
      });
    }

    it('consumes the relay topic and keeps every document at its latest state (idempotent-handler mode)', async () => {
      await runExample('idempotent-handler');
    });

    it('does the same in transactional mode (real mongod only: needs transactions)', async function () {
      skipUnless(this, transactions, 'transactions');
      await runExample('transactional');
    });

    async function runOnce(format: 'relaxed' | 'canonical', withBigInteger: boolean) {
      const topic = await kit.topic(`view-${format}`);
      const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
      const _id = new ObjectId();
      // The relay reads change events with the driver's default BSON promotion, as this round trip does.
      const asTheRelayReadsIt = BSON.deserialize(
        BSON.serialize({
          _id,
          price: new Double(2.0),
          units: Long.fromNumber(5),
          qty: new Int32(7),
          ratio: new Double(2.5),
          ...(withBigInteger ? { big: Long.fromString('9007199254740993') } : {}),
        }),
      ) as { _id: ObjectId };
      const record = toRelayRecord(factory.insert(asTheRelayReadsIt), { format });
      await kit.produce(topic, [record]);
      const viewColl = `view_${topic.replace(/[^a-zA-Z0-9]/g, '_')}`;
      const view = await startMaterializedView({
        brokers: services().brokers.split(','),
        mongoUri: services().mongoUri,
        topics: [topic],
        viewDb: TEST_DB,
        viewColl,
        groupId: `group-${topic}`,
        mode: 'idempotent-handler',
        partitionsConcurrently: 1,
        tombstoneTtlSeconds: 3_600,
        logLevel: process.env.H12_LOG ?? 'silent',
      });
      running.push(view);
      const raw = kit.client.db(TEST_DB).collection(viewColl, { promoteValues: false });
      return { topic, view, raw, _id };
    }

    it('applies canonical records with exactly the documented number conversions (integral values become Int32/Int64; int64 stays exact)', async () => {
      const { raw, _id } = await runOnce('canonical', true);
      const doc = await waitFor(() => raw.findOne({ _id }), {
        timeoutMs: 30_000,
        message: 'the view document',
      });
      expect(doc.price, 'Double 2.0').to.be.instanceOf(Int32);
      expect(doc.units, 'Int64 5').to.be.instanceOf(Int32);
      expect(doc.qty, 'Int32 7').to.be.instanceOf(Int32);
      expect(doc.ratio, 'Double 2.5').to.be.instanceOf(Double);
      expect(doc.big, 'Int64 2^53 + 1').to.be.instanceOf(Long);
      expect(String(doc.big)).to.equal('9007199254740993');
    });

    it('refuses a relaxed record holding an integer beyond 2^53 (its exact value may be lost) and dead-letters it, saying to use RELAY_VALUE_FORMAT=canonical', async () => {
      const { topic, raw, _id } = await runOnce('relaxed', true);
      const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
      try {
        const [dead] = await dlq.waitForCount(1);
        expect(dead!.headers['dead-letter-error']).to.contain('RELAY_VALUE_FORMAT=canonical');
        expect(await raw.findOne({ _id })).to.equal(null);
      } finally {
        await dlq.stop();
      }
    });

    it('applies other relaxed records with exactly the documented number conversions (as canonical)', async () => {
      const { raw, _id } = await runOnce('relaxed', false);
      const doc = await waitFor(() => raw.findOne({ _id }), {
        timeoutMs: 30_000,
        message: 'the view document',
      });
      expect(doc.price, 'Double 2.0').to.be.instanceOf(Int32);
      expect(doc.units, 'Int64 5').to.be.instanceOf(Int32);
      expect(doc.qty, 'Int32 7').to.be.instanceOf(Int32);
      expect(doc.ratio, 'Double 2.5').to.be.instanceOf(Double);
    });
  });
});
