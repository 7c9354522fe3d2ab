import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { ConsumerMetricName } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer stop and heartbeats (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('finishes and commits the record in hand on stop(), and starts no other', async () => {
    const topic = await kit.topic('graceful-stop');
    const records = [1, 2, 3].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, records);

    const started: string[] = [];
    const finished: string[] = [];
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({
      ...options,
      handler: async (_event, { changeId }) => {
        started.push(changeId);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        finished.push(changeId);
      },
    });
    await waitFor(() => started.length === 1, { timeoutMs: 30_000, message: 'the first handler call' });
    await consumer.stop();

    expect(finished).to.deep.equal([records[0]!.key]);
    expect(started).to.deep.equal([records[0]!.key]);
    expect(consumer.isRunning).to.equal(false);
    expect((await kit.committedOffsets(options.groupId, topic)).get(0)).to.equal('1');
    expect(
      await kit.db.collection(options.seen!.collection!).countDocuments({ changeId: records[0]!.key }),
    ).to.equal(1);
  });

  it('keeps its partitions through a handler that runs longer than the session timeout (heartbeats)', async function () {
    const topic = await kit.topic('long-handler');
    const records = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, records);

    let calls = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      consumerConfig: { sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 },
      heartbeatIntervalMs: 250,
      handler: async () => {
        calls++;
        if (calls === 1) await new Promise((resolve) => setTimeout(resolve, 9_000));
      },
    });
    await waitFor(async () => (await kit.committedOffsets(options.groupId, topic)).get(0) === '2', {
      timeoutMs: 40_000,
      message: 'both records committed by the same group generation',
    });
    expect(calls).to.equal(2);
    expect(await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })).to.equal(0);
  });
});
