import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import {
  ConsumerMetricName,
  DeadLetterHeader,
  PermanentHandlerError,
  type ChangeBatchItem,
  type SeenDocument,
} from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord, type RelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, collectTopic, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer batch handler (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  function records(count: number): RelayRecord[] {
    return Array.from({ length: count }, (_, seq) =>
      toRelayRecord(factory.insert({ _id: new ObjectId(), seq })),
    );
  }

  it('hands a bulk writer the new changes of a partition in offset order, several at a time, each change once', async () => {
    const topic = await kit.topic('batch');
    const fresh = records(120);
    // Re-published duplicates in between (a relay crash), which the handler must never see again.
    const published = [...fresh.slice(0, 60), ...fresh.slice(10, 20), ...fresh.slice(60)];
    await kit.produce(topic, published);

    const batches: string[][] = [];
    const keys: Array<string | null> = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      batchSize: 50,
      batchHandler: (items: ReadonlyArray<ChangeBatchItem>) => {
        batches.push(items.map((item) => item.changeId));
        keys.push(...items.map((item) => item.record.key));
      },
    });
    await waitFor(
      async () =>
        (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === fresh.length,
      {
        timeoutMs: 30_000,
        message: () => `${fresh.length} changes handled (${batches.flat().length} so far)`,
      },
    );
    expect(batches.flat()).to.deep.equal(fresh.map((record) => record.key));
    expect(keys).to.deep.equal(batches.flat());
    expect(batches.length, 'fewer calls than changes').to.be.lessThan(fresh.length / 2);
    for (const batch of batches) expect(batch.length).to.be.at.most(50);
    expect(await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })).to.equal(10);
    const seen = kit.db.collection<SeenDocument>(options.seen!.collection!);
    expect(await seen.countDocuments({ outcome: 'handled' })).to.equal(fresh.length);
    await waitFor(
      async () => (await kit.committedOffsets(options.groupId, topic)).get(0) === String(published.length),
      { message: 'every offset committed' },
    );
  });

  it('on a permanent error, retries the batch one change at a time so that only the failing change is dead-lettered', async () => {
    const topic = await kit.topic('batch-poison');
    const published = records(12);
    const poison = published[7]!;
    await kit.produce(topic, published);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      batchHandler: (items) => {
        if (items.some((item) => item.changeId === poison.key)) {
          throw new PermanentHandlerError('mapping conflict');
        }
        handled.push(...items.map((item) => item.changeId));
      },
    });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.key).to.equal(poison.key);
      expect(dead!.headers[DeadLetterHeader.error]).to.equal('mapping conflict');
      await waitFor(() => handled.length === published.length - 1, {
        timeoutMs: 30_000,
        message: 'every other change handled',
      });
      expect(handled).to.deep.equal(
        published.filter((record) => record !== poison).map((record) => record.key),
      );
      expect(dlq.messages).to.have.length(1);
    } finally {
      await dlq.stop();
    }
  });
});
