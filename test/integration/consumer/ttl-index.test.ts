import { expect } from 'chai';
import type { Document } from 'mongodb';

import { TtlIndexMismatchError } from '../../../src/consumer/index.js';
import { ConsumerTestKit, TEST_DB, probeCollModTtl, skipUnless, type Capability } from './helpers.js';

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

  it('uses the default collection mongo_kafka_relay.seen_changes and a TTL of 7 days when not configured', async () => {
    const topic = await kit.topic('ttl-default');
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({ ...options, seen: undefined, handler: () => undefined });
    expect(consumer.ttlIndex?.action).to.be.oneOf(['created', 'unchanged', 'updated']);
    const indexes = await kit.client
      .db('mongo_kafka_relay')
      .collection('seen_changes')
      .listIndexes()
      .toArray();
    const ttl = indexes.find((index) => Object.keys(index.key as Document).join() === 'seenAt');
    expect(ttl?.expireAfterSeconds).to.equal(604_800);
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

  it("changes the TTL with collMod when onTtlMismatch is 'update' (real mongod only: needs collMod on TTL indexes)", async function () {
    skipUnless(this, collMod, 'collMod for TTL indexes');
    const topic = await kit.topic('ttl-update');
    const options = kit.baseOptions(topic);
    const collection = options.seen!.collection!;
    await kit.db
      .collection(collection)
      .createIndex({ seenAt: 1 }, { name: 'seenAt_ttl', expireAfterSeconds: 3_600 });

    const consumer = await kit.start({
      ...options,
      seen: { ...options.seen, expireAfterSeconds: 7_200, onTtlMismatch: 'update' },
      handler: () => undefined,
    });
    expect(consumer.ttlIndex).to.deep.include({ action: 'updated', previousExpireAfterSeconds: 3_600 });
    expect(await seenAtIndex(collection)).to.include({ expireAfterSeconds: 7_200 });
  });
});
