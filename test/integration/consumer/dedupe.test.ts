import { expect } from 'chai';
import { Decimal128, Long, ObjectId, Timestamp } from 'mongodb';
import { Registry } from 'prom-client';

import { RecordHeader } from '../../../src/contract/record.js';
import {
  ConsumerMetricName,
  type ChangeEvent,
  type RecordMetadata,
  type SeenDocument,
} from '../../../src/consumer/index.js';
import { ChangeEventFactory, richDocument, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, captureLogger, metricValue, services, waitFor } from './helpers.js';

describe('ChangeConsumer dedupe on the change ID (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('runs the handler once for a change published twice at different offsets, and counts the duplicate', async () => {
    const topic = await kit.topic('dup-offsets');
    const [a, b, c] = [1, 2, 3].map((seq) => toRelayRecord(factory.insert(richDocument(seq))));
    await kit.produce(topic, [a!, b!, a!, c!, b!]);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({ ...options, handler: (_event, { changeId }) => void handled.push(changeId) });

    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })) === 2,
      {
        timeoutMs: 30_000,
        message: () => `2 duplicates counted (handled ${handled.length})`,
      },
    );
    expect(handled).to.deep.equal([a!.key, b!.key, c!.key]);
    expect(await metricValue(options.registry, ConsumerMetricName.handled, { topic })).to.equal(3);
    await waitFor(async () => (await kit.committedOffsets(options.groupId, topic)).get(0) === '5', {
      message: 'offset 5 committed (duplicates are committed too)',
    });

    const seen = await kit.db
      .collection<SeenDocument>(options.seen!.collection!)
      .find()
      .sort({ offset: 1 })
      .toArray();
    expect(seen.map((doc) => [doc._id, doc.scope, doc.changeId])).to.deep.equal(
      [a!.key, b!.key, c!.key].map((changeId) => [
        `${options.groupId}:${changeId}`,
        options.groupId,
        changeId,
      ]),
    );
    expect(seen.map((doc) => Number(doc.offset))).to.deep.equal([0, 1, 3]);
    for (const doc of seen) {
      expect(doc).to.include({ topic, partition: 0, outcome: 'handled' });
      expect(doc.seenAt).to.be.instanceOf(Date);
      expect(Object.keys(doc).sort()).to.deep.equal([
        '_id',
        'changeId',
        'offset',
        'outcome',
        'partition',
        'scope',
        'seenAt',
        'topic',
      ]);
    }
  });

  it('skips changes handled before a restart when they are published again after it', async () => {
    const topic = await kit.topic('dup-restart');
    const [a, b, c] = [1, 2, 3].map((seq) => toRelayRecord(factory.insert(richDocument(seq))));
    await kit.produce(topic, [a!, b!]);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    const first = await kit.start({
      ...options,
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    await waitFor(() => handled.length === 2, {
      timeoutMs: 30_000,
      message: 'the first consumer handled 2 changes',
    });
    await first.stop();

    // The relay crashed and re-published a and b (same change IDs, new offsets), then c.
    await kit.produce(topic, [a!, b!, c!]);
    const registry = new Registry();
    await kit.start({ ...options, registry, handler: (_event, { changeId }) => void handled.push(changeId) });
    await waitFor(() => handled.length === 3, {
      timeoutMs: 30_000,
      message: 'the restarted consumer handled c',
    });
    await waitFor(async () => (await metricValue(registry, ConsumerMetricName.duplicates, { topic })) === 2, {
      message: 'the re-published a and b counted as duplicates',
    });
    expect(handled).to.deep.equal([a!.key, b!.key, c!.key]);
  });

  it('skips every change when a consumer re-reads the topic from the beginning (offsets lost)', async () => {
    const topic = await kit.topic('dup-reread');
    const records = [1, 2, 3, 4].map((seq) => toRelayRecord(factory.insert(richDocument(seq))));
    await kit.produce(topic, records);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    const first = await kit.start({
      ...options,
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    await waitFor(() => handled.length === 4, { timeoutMs: 30_000, message: '4 changes handled' });
    await first.stop();
    // The group's committed offsets are lost (deleted): it starts again from the beginning.
    const admin = kit.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([options.groupId]).finally(() => admin.disconnect());
    expect((await kit.committedOffsets(options.groupId, topic)).get(0)).to.equal('-1');

    const registry = new Registry();
    await kit.start({
      ...options,
      registry,
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    await waitFor(async () => (await metricValue(registry, ConsumerMetricName.duplicates, { topic })) === 4, {
      timeoutMs: 30_000,
      message: 'all 4 re-read records skipped as duplicates',
    });
    expect(handled).to.have.length(4);
  });

  it('hands the handler a typed change event with BSON types and the record metadata', async () => {
    const topic = await kit.topic('typed');
    const doc = richDocument(9, { tags: ['a', 'b'] });
    const relaxed = toRelayRecord(factory.insert(doc), { format: 'relaxed' });
    const canonical = toRelayRecord(factory.update(doc, { seq: 9 }), { format: 'canonical' });
    await kit.produce(topic, [relaxed, canonical]);

    const received: Array<{ event: ChangeEvent; record: RecordMetadata; attempt: number }> = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handler: (event, { record, attempt }) => void received.push({ event, record, attempt }),
    });
    await waitFor(() => received.length === 2, { timeoutMs: 30_000, message: '2 changes handled' });

    for (const [index, source] of [relaxed, canonical].entries()) {
      const { event, record, attempt } = received[index]!;
      expect(attempt).to.equal(1);
      expect(record).to.include({ topic, partition: 0, offset: String(index), key: source.key });
      expect(record.headers).to.deep.equal(source.headers);
      expect(record.timestamp).to.match(/^\d+$/);
      expect(event.clusterTime).to.be.instanceOf(Timestamp);
      if (event.operationType !== 'insert' && event.operationType !== 'update')
        throw new Error('unexpected type');
      expect(event.documentKey._id).to.be.instanceOf(ObjectId);
      expect(event.fullDocument?.price).to.be.instanceOf(Decimal128);
      expect(event.fullDocument?.createdAt).to.be.instanceOf(Date);
      expect(event.fullDocument?.big).to.be.instanceOf(Long);
    }
    // Relaxed Extended JSON writes an int64 as a JSON number, so only the canonical format keeps 2^53 + 1 exact.
    const canonicalEvent = received[1]!.event as { fullDocument?: { big?: Long } };
    expect(String(canonicalEvent.fullDocument?.big)).to.equal('9007199254740993');
    expect(received[1]!.event.operationType).to.equal('update');
  });

  it('takes the change ID from the change-id header when a record has no key', async () => {
    const topic = await kit.topic('header-id');
    const record = toRelayRecord(factory.insert(richDocument(1)));
    await kit.produce(topic, [
      { ...record, key: null },
      { ...record, key: null },
    ]);

    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({ ...options, handler: (_event, { changeId }) => void handled.push(changeId) });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.duplicates, { topic })) === 1,
      {
        timeoutMs: 30_000,
        message: 'the second copy counted as a duplicate',
      },
    );
    expect(handled).to.deep.equal([record.headers[RecordHeader.changeId]]);
  });

  it('connects with a URI without ever logging it, and leaves a MongoClient passed in open after stop', async () => {
    const topic = await kit.topic('logging');
    await kit.produce(topic, [toRelayRecord(factory.insert(richDocument(1)))]);
    const { logger, raw } = captureLogger('debug');
    const options = kit.baseOptions(topic);
    const uri = services().mongoUri;

    const handled: string[] = [];
    const ownsClient = await kit.start({
      ...options,
      mongo: { uri },
      logger,
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    await waitFor(() => handled.length === 1, { timeoutMs: 30_000, message: 'the change handled' });
    await ownsClient.stop();
    expect(raw.length).to.be.greaterThan(0);
    expect(raw.filter((line) => line.includes(uri))).to.deep.equal([]);

    const borrowed = await kit.start({
      ...options,
      groupId: `${options.groupId}-2`,
      handler: () => undefined,
    });
    await borrowed.stop();
    expect(await kit.db.command({ ping: 1 })).to.include({ ok: 1 });
  });
});
