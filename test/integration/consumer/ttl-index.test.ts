import { expect } from 'chai';
import type { Document } from 'mongodb';

import { RetentionExceedsTtlError, TtlIndexMismatchError } from '../../../src/consumer/index.js';
import {
  ConsumerTestKit,
  TEST_DB,
  captureLogger,
  createTopic,
  probeCollModTtl,
  skipUnless,
  type Capability,
} from './helpers.js';

describe('ChangeConsumer seen collection TTL index (integration)', function () {
  const kit = new ConsumerTestKit();
  let collMod: Capability;

  before(async () => {
    await kit.setUp();
    collMod = await probeCollModTtl(kit.client);
  });
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  async function seenAtIndex(collection: string): Promise<Document | undefined> {
    const indexes = await kit.db.collection(collection).listIndexes().toArray();
    return indexes.find((index) => Object.keys(index.key as Document).join() === 'seenAt');
  }

  it('creates a TTL index on seenAt with the configured expireAfterSeconds at start-up, idempotently', async () => {
    const topic = await kit.topic('ttl-create');
    const options = kit.baseOptions(topic);
    const seen = { ...options.seen, expireAfterSeconds: 3_600 };

    const first = await kit.start({ ...options, seen, handler: () => undefined });
    expect(first.ttlIndex?.action).to.equal('created');
    expect(await seenAtIndex(seen.collection!)).to.include({ expireAfterSeconds: 3_600, name: 'seenAt_ttl' });
    await first.stop();

    const second = await kit.start({ ...options, seen, handler: () => undefined });
    expect(second.ttlIndex?.action).to.equal('unchanged');
    expect((await kit.db.collection(seen.collection!).listIndexes().toArray()).length).to.equal(2);
  });

  it('uses the default collection mongo_kafka_relay.seen_changes and a TTL of 15 days when not configured', async () => {
    const topic = await kit.topic('ttl-default');
    const options = kit.baseOptions(topic);
    const defaultSeen = kit.client.db('mongo_kafka_relay').collection('seen_changes');
    // A known start: no default seen collection (this MongoDB serves tests only).
    await defaultSeen.drop().catch(() => undefined);

    const first = await kit.start({ ...options, seen: undefined, handler: () => undefined });
    expect(first.ttlIndex?.action).to.equal('created');
    await first.stop();
    const second = await kit.start({ ...options, seen: undefined, handler: () => undefined });
    expect(second.ttlIndex?.action).to.equal('unchanged');

    const indexes = await defaultSeen.listIndexes().toArray();
    const ttl = indexes.find((index) => Object.keys(index.key as Document).join() === 'seenAt');
    expect(ttl?.expireAfterSeconds).to.equal(1_296_000);
  });

  it('never shrinks a longer TTL another application set on a shared seen collection, by default', async () => {
    const topic = await kit.topic('ttl-keep-longer');
    const options = kit.baseOptions(topic);
    const collection = options.seen!.collection!;
    await kit.db
      .collection(collection)
      .createIndex({ seenAt: 1 }, { name: 'seenAt_ttl', expireAfterSeconds: 7_200 });
    const { logger, lines } = captureLogger('info');

    const consumer = await kit.start({
      ...options,
      logger,
      seen: { ...options.seen, expireAfterSeconds: 3_600 },
      handler: () => undefined,
    });
    expect(consumer.ttlIndex).to.deep.include({ action: 'kept-longer', expireAfterSeconds: 7_200 });
    expect(await seenAtIndex(collection)).to.include({ expireAfterSeconds: 7_200 });
    const warning = lines.find((line) => Number(line.level) === 40 && String(line.msg).includes('TTL'));
    expect(warning, 'a warning about the longer TTL').to.not.equal(undefined);
  });

  it("shrinks it only with onTtlMismatch 'update' (real mongod only: needs collMod on TTL indexes)", async function () {
    skipUnless(this, collMod, 'collMod for TTL indexes');
    const topic = await kit.topic('ttl-shrink');
    const options = kit.baseOptions(topic);
    const collection = options.seen!.collection!;
    await kit.db
      .collection(collection)
      .createIndex({ seenAt: 1 }, { name: 'seenAt_ttl', expireAfterSeconds: 7_200 });
    const consumer = await kit.start({
      ...options,
      seen: { ...options.seen, expireAfterSeconds: 3_600, onTtlMismatch: 'update' },
      handler: () => undefined,
    });
    expect(consumer.ttlIndex).to.deep.include({ action: 'updated', previousExpireAfterSeconds: 7_200 });
    expect(await seenAtIndex(collection)).to.include({ expireAfterSeconds: 3_600 });
  });

  describe('the TTL against the retention of the topics', () => {
    it('warns at start when a topic keeps records longer than the seen TTL, naming the topic, both values and the fix', async () => {
      const topic = await kit.topicWithConfig('retention-long', 1, [
        { name: 'retention.ms', value: String(30 * 86_400_000) },
      ]);
      await createTopic(kit.kafka, `${topic}.dlq`, 1);
      const options = kit.baseOptions(topic);
      const { logger, lines } = captureLogger('info');
      await kit.start({
        ...options,
        logger,
        seen: { ...options.seen, expireAfterSeconds: 3_600 },
        handler: () => undefined,
      });
      const warning = lines.find(
        (line) => Number(line.level) === 40 && String(line.msg).includes('retention'),
      );
      expect(warning, JSON.stringify(lines.map((line) => line.msg))).to.not.equal(undefined);
      expect(JSON.stringify(warning)).to.contain(topic).and.contain('3600').and.contain('2592000000');
    });

    it("refuses to start with seen.retentionCheck 'fail', naming the topic and the smallest safe TTL", async () => {
      const topic = await kit.topicWithConfig('retention-fail', 1, [{ name: 'retention.ms', value: '-1' }]);
      await createTopic(kit.kafka, `${topic}.dlq`, 1);
      const options = kit.baseOptions(topic);
      const error = await kit
        .start({
          ...options,
          seen: { ...options.seen, expireAfterSeconds: 3_600, retentionCheck: 'fail' },
          handler: () => undefined,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).to.be.instanceOf(RetentionExceedsTtlError);
      expect((error as Error).message)
        .to.contain(topic)
        .and.match(/forever|unlimited/);
    });

    it('stays quiet when every topic deletes records well within the TTL (retention.ms + segment.ms)', async () => {
      const topic = await kit.topicWithConfig('retention-short', 1, [
        { name: 'retention.ms', value: '600000' },
        { name: 'segment.ms', value: '600000' },
      ]);
      await createTopic(kit.kafka, `${topic}.dlq`, 1);
      const options = kit.baseOptions(topic);
      const { logger, lines } = captureLogger('info');
      await kit.start({
        ...options,
        logger,
        seen: { ...options.seen, expireAfterSeconds: 3_600, retentionCheck: 'fail' },
        handler: () => undefined,
      });
      expect(
        lines.filter((line) => Number(line.level) >= 40 && String(line.msg).includes('retention')),
      ).to.deep.equal([]);
    });
  });

  it("refuses to start with onTtlMismatch 'fail' when the index has another TTL, naming the collection, both values and the fix", async () => {
    const topic = await kit.topic('ttl-fail');
    const options = kit.baseOptions(topic);
    const collection = options.seen!.collection!;
    await kit.db
      .collection(collection)
      .createIndex({ seenAt: 1 }, { name: 'seenAt_ttl', expireAfterSeconds: 3_600 });

    const error = await kit
      .start({
        ...options,
        seen: { ...options.seen, expireAfterSeconds: 7_200, onTtlMismatch: 'fail' },
        handler: () => undefined,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).to.be.instanceOf(TtlIndexMismatchError);
    const message = (error as Error).message;
    expect(message).to.contain(`${TEST_DB}.${collection}`);
    expect(message).to.contain('expireAfterSeconds=3600');
    expect(message).to.contain('expireAfterSeconds=7200');
    expect(message).to.contain("onTtlMismatch to 'update'");
    expect(message).to.contain('collMod');
    expect(await seenAtIndex(collection)).to.include({ expireAfterSeconds: 3_600 });
  });
});
