import { expect } from 'chai';
import { ObjectId } from 'mongodb';
import { Registry } from 'prom-client';

import { ConsumerMetricName, type SeenDocument } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer seen marks per consumer group (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('lets two consumer groups sharing one seen collection each handle every change (marks are per group by default)', async () => {
    const topic = await kit.topic('two-groups');
    const records = [1, 2, 3].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, records);

    // Two applications with the default seen settings except the collection, which both share.
    const options = kit.baseOptions(topic);
    const handled = new Map<string, string[]>([
      ['search-indexer', []],
      ['cache-invalidator', []],
    ]);
    const registries = new Map<string, Registry>();
    for (const [app, calls] of handled) {
      const registry = new Registry();
      registries.set(app, registry);
      await kit.start({
        ...options,
        groupId: `${options.groupId}-${app}`,
        registry,
        handler: (_event, { changeId }) => void calls.push(changeId),
      });
      // One after the other, so the second starts on a seen collection the first has filled.
      await waitFor(() => calls.length === records.length, {
        timeoutMs: 30_000,
        message: () => `${app} handled ${records.length} changes (handled ${calls.length})`,
      });
    }

    for (const [app, calls] of handled) {
      expect(calls, app).to.deep.equal(records.map((record) => record.key));
      expect(await metricValue(registries.get(app)!, ConsumerMetricName.duplicates, { topic }), app).to.equal(
        0,
      );
    }
    const seen = kit.db.collection<SeenDocument>(options.seen!.collection!);
    expect(await seen.countDocuments(), 'one mark per change and group').to.equal(2 * records.length);
  });

  it('shares marks between groups only when told to (seen.scope), e.g. when an application moves to a new group id', async () => {
    const topic = await kit.topic('group-scope');
    const records = [1, 2].map((seq) => toRelayRecord(factory.insert({ _id: new ObjectId(), seq })));
    await kit.produce(topic, records);

    const options = kit.baseOptions(topic);
    const oldCalls: string[] = [];
    const old = await kit.start({
      ...options,
      groupId: `${options.groupId}-v1`,
      handler: (_event, { changeId }) => void oldCalls.push(changeId),
    });
    await waitFor(() => oldCalls.length === 2, { timeoutMs: 30_000, message: 'v1 handled both changes' });
    await old.stop();

    const registry = new Registry();
    const newCalls: string[] = [];
    await kit.start({
      ...options,
      groupId: `${options.groupId}-v2`,
      seen: { ...options.seen, scope: `${options.groupId}-v1` },
      registry,
      handler: (_event, { changeId }) => void newCalls.push(changeId),
    });
    await waitFor(async () => (await metricValue(registry, ConsumerMetricName.duplicates, { topic })) === 2, {
      timeoutMs: 30_000,
      message: 'v2 skipped what v1 handled',
    });
    expect(newCalls).to.deep.equal([]);
  });
});
