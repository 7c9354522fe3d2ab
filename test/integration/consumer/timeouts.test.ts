import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { DeadLetterHeader } from '../../../src/contract/record.js';
import { ConsumerMetricName, HandlerTimeoutError } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, collectTopic, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer handler timeout and stop timeout (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('aborts a handler stuck past handlerTimeoutMs through its signal, counts it as a failed attempt and moves on', async () => {
    const topic = await kit.topic('handler-timeout');
    const [stuck, next] = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, [stuck!, next!]);

    const reasons: unknown[] = [];
    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handlerTimeoutMs: 300,
      retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
      handler: async (_event, { changeId, signal }) => {
        if (changeId !== stuck!.key) {
          handled.push(changeId);
          return;
        }
        // A call that would hang on a socket forever, but gives up when its signal fires.
        await new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            reasons.push(signal.reason);
            reject(signal.reason as Error);
          }),
        );
      },
    });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.key).to.equal(stuck!.key);
      expect(dead!.headers[DeadLetterHeader.attempts]).to.equal('2');
      expect(dead!.headers[DeadLetterHeader.error]).to.match(/did not finish within 300 ms/);
      expect(reasons).to.have.length(2);
      for (const reason of reasons) expect(reason).to.be.instanceOf(HandlerTimeoutError);
      await waitFor(() => handled.length === 1, { timeoutMs: 30_000, message: 'the next change handled' });
      expect(handled).to.deep.equal([next!.key]);
    } finally {
      await dlq.stop();
    }
  });

  it('also gives up on a stuck handler that ignores its signal', async () => {
    const topic = await kit.topic('handler-timeout-deaf');
    const record = toRelayRecord(factory.insert({ _id: new ObjectId() }));
    await kit.produce(topic, [record]);
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handlerTimeoutMs: 300,
      retry: { attempts: 1 },
      handler: () => new Promise<void>(() => undefined),
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })) === 1,
      { timeoutMs: 30_000, message: 'the stuck change dead-lettered after its timeout' },
    );
  });

  it('returns from stop() after stopTimeoutMs when the handler in hand never finishes, leaving that record uncommitted', async () => {
    const topic = await kit.topic('stop-timeout');
    const record = toRelayRecord(factory.insert({ _id: new ObjectId() }));
    await kit.produce(topic, [record]);

    let called = false;
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({
      ...options,
      handlerTimeoutMs: 600_000,
      stopTimeoutMs: 500,
      // Ignores its signal and never settles: stuck on a socket without a timeout.
      handler: () => {
        called = true;
        return new Promise<void>(() => undefined);
      },
    });
    await waitFor(() => called, { timeoutMs: 30_000, message: 'the handler called' });
    let stopped = false;
    const stopping = consumer.stop().then(() => (stopped = true));
    await waitFor(() => stopped, { timeoutMs: 20_000, message: 'stop() returned despite the stuck handler' });
    await stopping;
    expect(consumer.isRunning).to.equal(false);
    expect((await kit.committedOffsets(options.groupId, topic)).get(0)).to.equal('-1');
  });
});
