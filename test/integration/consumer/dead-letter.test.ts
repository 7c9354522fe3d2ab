import { expect } from 'chai';
import type { ConfigResourceTypes } from 'kafkajs';
import { BSON, ObjectId } from 'mongodb';

import { RecordHeader } from '../../../src/contract/record.js';
import {
  ConsumerMetricName,
  DeadLetterHeader,
  DeadLetterTopicMissingError,
  PermanentHandlerError,
  type SeenDocument,
} from '../../../src/consumer/index.js';
import { ChangeEventFactory, richDocument, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, collectTopic, createTopic, metricValue, waitFor } from './helpers.js';

/** kafkajs ConfigResourceTypes.TOPIC (a type-only import: a value import of kafkajs here upsets the test loader). */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

describe('ChangeConsumer handler failures and dead letters (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('retries a throwing handler N times, then dead-letters the original record with the error and attempts, and moves on', async () => {
    const topic = await kit.topic('poison');
    const [ok1, poison, ok2] = [1, 2, 3].map((seq) => toRelayRecord(factory.insert(richDocument(seq))));
    await kit.produce(topic, [ok1!, poison!, ok2!]);

    const handled: string[] = [];
    const poisonAttempts: number[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      retry: { attempts: 4, initialDelayMs: 10, maxDelayMs: 40 },
      handler: (_event, { changeId, attempt }) => {
        if (changeId === poison!.key) {
          // Recorded here, asserted below: an assertion in a handler would only be one more handler error.
          poisonAttempts.push(attempt);
          throw new Error(`cannot apply ${changeId}`);
        }
        handled.push(changeId);
      },
    });

    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      await waitFor(() => handled.length === 2, {
        timeoutMs: 30_000,
        message: 'the records around the poison handled',
      });
      expect(handled).to.deep.equal([ok1!.key, ok2!.key]);
      expect(poisonAttempts).to.deep.equal([1, 2, 3, 4]);

      expect(dead!.key).to.equal(poison!.key);
      expect(dead!.value).to.equal(poison!.value);
      expect(dead!.headers).to.deep.include(poison!.headers);
      expect(dead!.headers).to.deep.include({
        [DeadLetterHeader.reason]: 'handler-failed',
        [DeadLetterHeader.error]: `cannot apply ${poison!.key}`,
        [DeadLetterHeader.attempts]: '4',
        [DeadLetterHeader.sourceTopic]: topic,
        [DeadLetterHeader.sourcePartition]: '0',
        [DeadLetterHeader.sourceOffset]: '1',
        [DeadLetterHeader.groupId]: options.groupId,
      });

      const { registry } = options;
      expect(
        await metricValue(registry, ConsumerMetricName.deadLettered, { topic, reason: 'handler-failed' }),
      ).to.equal(1);
      expect(await metricValue(registry, ConsumerMetricName.handlerRetries, { topic })).to.equal(3);
      await waitFor(async () => (await metricValue(registry, ConsumerMetricName.handled, { topic })) === 2, {
        message: 'the two good records counted as handled (after their seen marks)',
      });
      const seen = kit.db.collection<SeenDocument>(options.seen!.collection!);
      expect(await seen.countDocuments({ changeId: poison!.key })).to.equal(
        1,
        'a dead-lettered change is marked seen',
      );
      await waitFor(async () => (await kit.committedOffsets(options.groupId, topic)).get(0) === '3', {
        message: 'all three offsets committed',
      });
      expect(dlq.messages).to.have.length(1);
    } finally {
      await dlq.stop();
    }
  });

  it('handles a record whose handler succeeds on a retry, without dead-lettering it', async () => {
    const topic = await kit.topic('flaky');
    const record = toRelayRecord(factory.insert(richDocument(1)));
    await kit.produce(topic, [record]);

    let calls = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handler: () => {
        calls++;
        if (calls < 3) throw new Error('transient');
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 1,
      {
        timeoutMs: 30_000,
        message: 'the change handled on the third call',
      },
    );
    expect(calls).to.equal(3);
    expect(await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })).to.equal(0);
  });

  it('dead-letters at once, without retries, when the handler throws PermanentHandlerError', async () => {
    const topic = await kit.topic('permanent');
    await kit.produce(topic, [toRelayRecord(factory.insert(richDocument(1)))]);

    let calls = 0;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handler: () => {
        calls++;
        throw new PermanentHandlerError('bad data');
      },
    });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.headers).to.include({
        [DeadLetterHeader.attempts]: '1',
        [DeadLetterHeader.error]: 'bad data',
      });
      expect(calls).to.equal(1);
    } finally {
      await dlq.stop();
    }
  });

  it('dead-letters a record with no change ID (no-change-id) and one that is not a change event (decode-failed)', async () => {
    const topic = await kit.topic('undecodable');
    const good = toRelayRecord(factory.insert(richDocument(1)));
    const headersWithoutId = { ...good.headers };
    delete headersWithoutId[RecordHeader.changeId];
    await kit.produce(topic, [
      { key: null, value: good.value, headers: headersWithoutId },
      { key: '82ABCDEF', value: 'not json' },
      good,
    ]);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({ ...options, handler: (_event, { changeId }) => void handled.push(changeId) });
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      const dead = await dlq.waitForCount(2);
      await waitFor(() => handled.length === 1, { timeoutMs: 30_000, message: 'the good record handled' });
      expect(dead.map((m) => m.headers[DeadLetterHeader.reason])).to.deep.equal([
        'no-change-id',
        'decode-failed',
      ]);
      expect(dead.map((m) => m.headers[DeadLetterHeader.attempts])).to.deep.equal(['0', '0']);
      expect(dead[1]!.key).to.equal('82ABCDEF');
      expect(dead[1]!.value).to.equal('not json');
      expect(handled).to.deep.equal([good.key]);
      const { registry } = options;
      expect(
        await metricValue(registry, ConsumerMetricName.deadLettered, { topic, reason: 'no-change-id' }),
      ).to.equal(1);
      expect(
        await metricValue(registry, ConsumerMetricName.deadLettered, { topic, reason: 'decode-failed' }),
      ).to.equal(1);
    } finally {
      await dlq.stop();
    }
  });

  it('makes the partition wait, never skip, while the dead-letter publish fails', async () => {
    const topic = await kit.topic('dlq-down');
    const [poison, next] = [1, 2].map((seq) => toRelayRecord(factory.insert(richDocument(seq))));
    // A dead-letter topic that refuses the record (too large for it) until its limit is raised.
    const deadLetterTopic = `${topic}.small-dlq`;
    const admin = kit.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [
          {
            topic: deadLetterTopic,
            numPartitions: 1,
            configEntries: [{ name: 'max.message.bytes', value: '200' }],
          },
        ],
        waitForLeaders: true,
      });
      await kit.produce(topic, [poison!, next!]);

      const handled: string[] = [];
      const options = kit.baseOptions(topic);
      await kit.start({
        ...options,
        retry: { attempts: 1 },
        outageRetry: { initialDelayMs: 100, maxDelayMs: 300 },
        deadLetter: { topic: deadLetterTopic },
        handler: (_event, { changeId }) => {
          if (changeId === poison!.key) throw new Error('poison');
          handled.push(changeId);
        },
      });

      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(handled, 'nothing after the poison record is handled while it waits').to.deep.equal([]);
      expect((await kit.committedOffsets(options.groupId, topic)).get(0)).to.equal('-1');
      expect(await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })).to.equal(0);

      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: TOPIC_RESOURCE,
            name: deadLetterTopic,
            configEntries: [{ name: 'max.message.bytes', value: '1048588' }],
          },
        ],
      });
      const dlq = await collectTopic(deadLetterTopic, { kafka: kit.kafka });
      try {
        const [dead] = await dlq.waitForCount(1);
        expect(dead!.key).to.equal(poison!.key);
        await waitFor(() => handled.length === 1, { timeoutMs: 30_000, message: 'the next record handled' });
        expect(handled).to.deep.equal([next!.key]);
        await waitFor(async () => (await kit.committedOffsets(options.groupId, topic)).get(0) === '2', {
          message: 'both offsets committed',
        });
      } finally {
        await dlq.stop();
      }
    } finally {
      await admin.disconnect();
    }
  });

  it('stops promptly while a dead-letter publish keeps failing, leaving that record uncommitted for redelivery', async () => {
    const topic = await kit.topic('dlq-stop');
    const poison = toRelayRecord(factory.insert(richDocument(1)));
    await kit.produce(topic, [poison]);
    // A dead-letter topic that refuses the record (too large for it).
    const refusing = await kit.topicWithConfig('dlq-stop-small', 1, [
      { name: 'max.message.bytes', value: '200' },
    ]);

    let calls = 0;
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({
      ...options,
      retry: { attempts: 1 },
      deadLetter: { topic: refusing },
      handler: () => {
        calls++;
        throw new Error('poison');
      },
    });
    await waitFor(() => calls === 1, { timeoutMs: 30_000, message: 'the handler called' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).to.be.lessThan(15_000);
    expect((await kit.committedOffsets(options.groupId, topic)).get(0)).to.equal('-1');

    // A consumer with a working dead-letter topic gets the record again and dead-letters it.
    const dlq = await collectTopic(`${topic}.dlq`, { kafka: kit.kafka });
    try {
      await kit.start({
        ...options,
        retry: { attempts: 1 },
        handler: () => Promise.reject(new Error('poison')),
      });
      const [dead] = await dlq.waitForCount(1);
      expect(dead!.key).to.equal(poison.key);
    } finally {
      await dlq.stop();
    }
  });

  it('keeps per-document order in the dead-letter topic (partition of the source partition) and names the group and the error', async () => {
    const partitions = 3;
    const topic = await kit.topic('dlq-order', partitions);
    const deadLetterTopic = `${topic}.dlq3`;
    await createTopic(kit.kafka, deadLetterTopic, partitions);
    const ids = [new ObjectId(), new ObjectId(), new ObjectId(), new ObjectId()];
    const records = [0, 1, 2].flatMap((version) =>
      ids.map((_id) =>
        toRelayRecord(
          version === 0 ? factory.insert({ _id, version }) : factory.update({ _id, version }, { version }),
          { partitions },
        ),
      ),
    );
    await kit.produce(topic, records);

    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      partitionsConcurrently: partitions,
      deadLetter: { topic: deadLetterTopic },
      handler: () => {
        throw new PermanentHandlerError('rejected by the index mapping');
      },
    });
    const dlq = await collectTopic(deadLetterTopic, { kafka: kit.kafka });
    try {
      const dead = await dlq.waitForCount(records.length);
      for (const message of dead) {
        expect(
          message.partition,
          `dead letter of source partition ${message.headers[DeadLetterHeader.sourcePartition]}`,
        ).to.equal(Number(message.headers[DeadLetterHeader.sourcePartition]));
        expect(message.headers).to.include({
          [DeadLetterHeader.groupId]: options.groupId,
          [DeadLetterHeader.error]: 'rejected by the index mapping',
          [DeadLetterHeader.errorName]: 'PermanentHandlerError',
        });
      }
      for (const _id of ids) {
        const key = BSON.EJSON.stringify({ _id }, { relaxed: false });
        const versions = dead
          .filter((message) => message.headers[RecordHeader.documentKey] === key)
          .sort((a, b) => Number(a.offset) - Number(b.offset))
          .map((message) => Number(message.headers[DeadLetterHeader.sourceOffset]));
        expect(versions, `dead letters of ${String(_id)} in source order`).to.have.length(3);
        expect(versions).to.deep.equal([...versions].sort((a, b) => a - b));
      }
    } finally {
      await dlq.stop();
    }
  });

  it('refuses to start when a dead-letter topic is missing, naming it and what to do', async () => {
    const topic = await kit.topicWithConfig('dlq-missing', 1, []);
    const error = await kit.start({ ...kit.baseOptions(topic), handler: () => undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(DeadLetterTopicMissingError);
    expect((error as Error).message)
      .to.contain(`${topic}.dlq`)
      .and.contain('create');
  });
});
