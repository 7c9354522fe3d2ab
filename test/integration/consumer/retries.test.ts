import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { DeadLetterHeader } from '../../../src/contract/record.js';
import { ConsumerMetricName, RetryableHandlerError } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord, type RelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, collectTopic, metricValue, waitFor } from './helpers.js';

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

describe('ChangeConsumer retryable and permanent handler errors (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  /** Records of `count` documents that all land in `partition` of a topic with `partitions`. */
  function recordsInPartition(partition: number, partitions: number, count: number): RelayRecord[] {
    const records: RelayRecord[] = [];
    while (records.length < count) {
      const record = toRelayRecord(factory.insert({ _id: new ObjectId() }), { partitions });
      if (record.partition === partition) records.push(record);
    }
    return records;
  }

  it('with the default retry settings, keeps retrying an error for longer than 4 seconds and then handles the change, dead-lettering nothing', async () => {
    const topic = await kit.topic('outage-4s');
    const [first, second] = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, [first!, second!]);

    const calls: Array<{ changeId: string; at: number; attempt: number }> = [];
    let failUntil = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      retry: undefined, // the defaults
      handler: (_event, { changeId, attempt }) => {
        const now = Date.now();
        calls.push({ changeId, at: now, attempt });
        if (failUntil === 0) failUntil = now + 4_500; // a search cluster answering 503 for 4.5 s
        if (changeId === first!.key && now < failUntil) throw new Error('503 Service Unavailable');
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 2,
      { timeoutMs: 60_000, message: () => `both changes handled (calls: ${calls.length})` },
    );
    expect(await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })).to.equal(0);
    const firstCalls = calls.filter((call) => call.changeId === first!.key);
    expect(firstCalls.at(-1)!.at, 'the last call came after the outage').to.be.at.least(failUntil);
    expect(firstCalls.map((call) => call.attempt)).to.deep.equal(firstCalls.map((_, index) => index + 1));
    expect(
      calls.findIndex((call) => call.changeId === second!.key),
      'order is kept: the next change only after the first succeeded',
    ).to.equal(calls.length - 1);
  });

  it('dead-letters at once an error the classifier calls permanent, and retries the ones it calls retryable', async () => {
    const topic = await kit.topic('classifier');
    const [bad, flaky] = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, [bad!, flaky!]);

    const calls = new Map<string, number>();
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      retry: {
        initialDelayMs: 20,
        maxDelayMs: 100,
        classify: (error) =>
          error instanceof HttpError && error.status >= 400 && error.status < 500 && error.status !== 429
            ? 'permanent'
            : 'retryable',
      },
      handler: (_event, { changeId }) => {
        const count = (calls.get(changeId) ?? 0) + 1;
        calls.set(changeId, count);
        if (changeId === bad!.key) throw new HttpError(400);
        if (count <= 4) throw new HttpError(count % 2 === 0 ? 429 : 503);
      },
    });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.key).to.equal(bad!.key);
      expect(dead!.headers).to.include({
        [DeadLetterHeader.attempts]: '1',
        [DeadLetterHeader.error]: 'HTTP 400',
      });
      await waitFor(
        async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 1,
        { timeoutMs: 30_000, message: 'the flaky change handled after its retryable errors' },
      );
      expect(calls.get(bad!.key)).to.equal(1);
      expect(calls.get(flaky!.key)).to.equal(5);
      expect(dlq.messages).to.have.length(1);
    } finally {
      await dlq.stop();
    }
  });

  it('treats RetryableHandlerError as retryable even when the classifier would not', async () => {
    const topic = await kit.topic('retryable-class');
    const record = toRelayRecord(factory.insert({ _id: new ObjectId() }));
    await kit.produce(topic, [record]);
    let calls = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      retry: { initialDelayMs: 10, maxDelayMs: 50, classify: () => 'permanent' },
      handler: () => {
        calls++;
        if (calls < 3) throw new RetryableHandlerError('try again');
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 1,
      { timeoutMs: 30_000, message: 'handled on the third call' },
    );
    expect(calls).to.equal(3);
  });

  it('dead-letters a retryable error only when an explicit limit (retry.attempts) is reached', async () => {
    const topic = await kit.topic('explicit-limit');
    const record = toRelayRecord(factory.insert({ _id: new ObjectId() }));
    await kit.produce(topic, [record]);
    let calls = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      retry: { attempts: 4, initialDelayMs: 10, maxDelayMs: 20 },
      handler: () => {
        calls++;
        throw new Error('still down');
      },
    });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.headers).to.include({ [DeadLetterHeader.attempts]: '4' });
      expect(calls).to.equal(4);
    } finally {
      await dlq.stop();
    }
  });

  it('pauses a partition that waits for a retry instead of holding up the other partitions (partitionsConcurrently 1), and keeps its order', async () => {
    const partitions = 2;
    const topic = await kit.topic('paused-partition', partitions);
    const [stuck, behindStuck] = recordsInPartition(0, partitions, 2);
    const others = recordsInPartition(1, partitions, 3);

    let failing = true;
    const handled: string[] = [];
    const calls: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      partitionsConcurrently: 1,
      retry: { initialDelayMs: 300, maxDelayMs: 300, jitter: 0 },
      handler: (_event, { changeId }) => {
        calls.push(changeId);
        if (changeId === stuck!.key && failing) throw new Error('downstream unavailable');
        handled.push(changeId);
      },
    });
    await kit.produce(topic, [stuck!, behindStuck!]);
    await waitFor(() => calls.filter((id) => id === stuck!.key).length >= 2, {
      timeoutMs: 30_000,
      message: 'the stuck change retried',
    });
    // While partition 0 waits for its retries, partition 1 keeps flowing.
    await kit.produce(topic, others);
    await waitFor(() => others.every((record) => handled.includes(record.key)), {
      timeoutMs: 30_000,
      message: () => `partition 1 handled while partition 0 waits (handled: ${handled.length})`,
    });
    expect(handled, 'nothing behind the stuck change in its partition').to.not.include(behindStuck!.key);

    failing = false;
    await waitFor(() => handled.includes(behindStuck!.key), {
      timeoutMs: 30_000,
      message: 'partition 0 resumed',
    });
    expect(handled.indexOf(stuck!.key)).to.be.lessThan(handled.indexOf(behindStuck!.key));
    expect(await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })).to.equal(0);
  });
});
