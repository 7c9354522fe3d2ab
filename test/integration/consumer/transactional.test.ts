import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { ConsumerMetricName, TransactionsUnsupportedError } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import {
  ConsumerTestKit,
  metricValue,
  probeTransactions,
  skipUnless,
  waitFor,
  type Capability,
} from './helpers.js';

describe("ChangeConsumer mode 'transactional' (integration)", function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
  let transactions: Capability;

  before(async () => {
    await kit.setUp();
    transactions = await probeTransactions(kit.client);
  });
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('commits the handler writes and the seen mark together, and rolls back a failed attempt (real mongod only: needs transactions)', async function () {
    skipUnless(this, transactions, 'transactions');
    const topic = await kit.topic('txn');
    const [a, b] = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, [a!, b!, a!]);

    const options = kit.baseOptions(topic);
    const effects = kit.db.collection<{ _id: string; attempt: number }>(
      `effects_${options.seen!.collection!}`,
    );
    await effects.insertOne({ _id: 'create-collection-outside-transactions', attempt: 0 });
    let calls = 0;
    await kit.start({
      ...options,
      mode: 'transactional',
      handler: async (_event, { changeId, session, attempt }) => {
        calls++;
        await effects.insertOne({ _id: changeId, attempt }, { session });
        // The first attempt for b writes, then fails: its write must not survive.
        if (changeId === b!.key && attempt === 1) throw new Error('fail after writing');
      },
    });

    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })) === 1,
      {
        timeoutMs: 30_000,
        message: 'the second copy of a counted as a duplicate',
      },
    );
    expect(
      await effects
        .find({ _id: { $in: [a!.key, b!.key] } })
        .sort({ _id: 1 })
        .toArray(),
    ).to.deep.equal(
      [
        { _id: a!.key, attempt: 1 },
        { _id: b!.key, attempt: 2 },
      ].sort((x, y) => (x._id < y._id ? -1 : 1)),
    );
    expect(calls).to.equal(3);
    expect(await kit.db.collection(options.seen!.collection!).countDocuments()).to.equal(2);
  });

  it('aborts and counts a duplicate when another delivery commits the seen mark before the transaction (real mongod only: needs transactions)', async function () {
    skipUnless(this, transactions, 'transactions');
    const topic = await kit.topic('txn-race');
    const record = toRelayRecord(factory.insert({ _id: new ObjectId(), seq: 1 }));
    await kit.produce(topic, [record]);

    const options = kit.baseOptions(topic);
    const seen = kit.db.collection(options.seen!.collection!);
    const effects = kit.db.collection<{ _id: string }>(`effects_${options.seen!.collection!}`);
    await effects.insertOne({ _id: 'create-collection-outside-transactions' });
    let calls = 0;
    let otherDelivery: Promise<unknown> | undefined;
    await kit.start({
      ...options,
      mode: 'transactional',
      retry: { attempts: 3, initialDelayMs: 1_000, maxDelayMs: 1_000 },
      handler: async (_event, { changeId, session }) => {
        calls++;
        await effects.insertOne({ _id: changeId }, { session });
        // While this attempt fails and waits for its retry, another delivery of the change commits its
        // seen mark (after this transaction was aborted, so the two never wait on each other).
        otherDelivery = new Promise((resolve) => setTimeout(resolve, 200)).then(() =>
          seen.insertOne({
            _id: `${options.groupId}:${changeId}` as never,
            scope: options.groupId,
            changeId,
            topic,
            partition: 0,
            offset: 0,
            seenAt: new Date(),
            outcome: 'handled',
          }),
        );
        throw new Error('first attempt fails');
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })) === 1,
      {
        timeoutMs: 30_000,
        message: 'the retry aborted on the seen mark and counted as a duplicate',
      },
    );
    await otherDelivery;
    expect(calls, 'the retry aborted before calling the handler').to.equal(1);
    expect(await effects.countDocuments({ _id: record.key })).to.equal(0);
    expect(await metricValue(options.registry, ConsumerMetricName.handled, { topic })).to.equal(0);
    expect(await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })).to.equal(0);
  });

  it('refuses to start, saying why and what to do, on a MongoDB without transactions (needs a MongoDB without transactions)', async function () {
    if (transactions.available) {
      console.log('      skipped: this MongoDB runs transactions, so there is no refusal to see');
      this.skip(); // reason: this MongoDB has transactions, so the refusal cannot happen
    }
    const topic = await kit.topic('txn-refused');
    const error = await kit
      .start({ ...kit.baseOptions(topic), mode: 'transactional', handler: () => undefined })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).to.be.instanceOf(TransactionsUnsupportedError);
    expect((error as Error).message)
      .to.match(/replica set/)
      .and.match(/idempotent-handler/);
  });
});
