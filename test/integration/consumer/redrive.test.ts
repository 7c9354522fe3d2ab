import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import {
  ConsumerMetricName,
  PermanentHandlerError,
  redriveDeadLetters,
  type SeenDocument,
} from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, collectTopic, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer dead-letter outcome in the seen mark, and the re-drive (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('records handled or dead-lettered in the mark; a re-drive clears the dead-letter mark and the change is handled again', async () => {
    const topic = await kit.topic('redrive');
    const [good, poison] = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, [good!, poison!]);

    let broken = true;
    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handler: (_event, { changeId }) => {
        if (changeId === poison!.key && broken)
          throw new PermanentHandlerError('mapping rejected the document');
        handled.push(changeId);
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })) === 1,
      { timeoutMs: 30_000, message: 'the poison change dead-lettered' },
    );
    const seen = kit.db.collection<SeenDocument>(options.seen!.collection!);
    await waitFor(async () => (await seen.countDocuments()) === 2, { message: 'both marks written' });
    const marks = await seen.find().toArray();
    const markOf = (changeId: string) => marks.find((mark) => mark.changeId === changeId);
    expect(markOf(good!.key)).to.deep.include({ outcome: 'handled' });
    expect(markOf(poison!.key)).to.deep.include({ outcome: 'dead-lettered' });
    expect(markOf(poison!.key)?.deadLetter).to.deep.include({
      reason: 'handler-failed',
      error: 'mapping rejected the document',
      topic: `${topic}.dlq`,
      attempts: 1,
    });

    // The mapping is fixed; the operator re-drives the dead letters of this group.
    broken = false;
    const report = await redriveDeadLetters({
      kafka: kit.kafka,
      mongo: { client: kit.client },
      groupId: options.groupId,
      deadLetterTopic: `${topic}.dlq`,
      seen: options.seen,
    });
    expect(report).to.deep.include({ read: 1, redriven: 1, skipped: 0 });
    await waitFor(() => handled.includes(poison!.key), {
      timeoutMs: 30_000,
      message: 'the re-driven change handled',
    });
    await waitFor(
      async () => (await seen.findOne({ _id: `${options.groupId}:${poison!.key}` }))?.outcome === 'handled',
      {
        message: 'its mark now says handled',
      },
    );

    // A second re-drive finds nothing left to do: the change is handled.
    const again = await redriveDeadLetters({
      kafka: kit.kafka,
      mongo: { client: kit.client },
      groupId: options.groupId,
      deadLetterTopic: `${topic}.dlq`,
      seen: options.seen,
    });
    expect(again).to.deep.include({ read: 1, redriven: 0, skipped: 1 });
    const source = await collectTopic(topic, { kafka: kit.kafka });
    try {
      await source.waitForCount(3);
      expect(source.messages.map((message) => message.key)).to.deep.equal([
        good!.key,
        poison!.key,
        poison!.key,
      ]);
    } finally {
      await source.stop();
    }
  });
});
