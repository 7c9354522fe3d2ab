import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { ConsumerMetricName } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord, type RelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, metricValue, waitFor } from './helpers.js';

describe('ChangeConsumer ordering across concurrent partitions (integration)', function () {
  const kit = new ConsumerTestKit();

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('handles each partition in order, one record at a time, while several partitions run concurrently', async () => {
    const partitions = 4;
    const topic = await kit.topic('ordering', partitions);
    const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

    // 6 documents per partition (by the relay's partitioner), 5 changes each, interleaved.
    const perPartition = new Map<number, ObjectId[]>();
    while ([...perPartition.values()].filter((ids) => ids.length >= 6).length < partitions) {
      const _id = new ObjectId();
      const { partition } = toRelayRecord(factory.insert({ _id }), { partitions });
      const ids = perPartition.get(partition) ?? [];
      if (ids.length < 6) perPartition.set(partition, [...ids, _id]);
    }
    const documents = [...perPartition.values()].flat();
    const records: RelayRecord[] = [];
    const expectedPerPartition = new Map<number, string[]>();
    for (let version = 0; version < 5; version++) {
      for (const _id of documents) {
        const event =
          version === 0 ? factory.insert({ _id, version }) : factory.update({ _id, version }, { version });
        const record = toRelayRecord(event, { partitions });
        records.push(record);
        expectedPerPartition.set(record.partition, [
          ...(expectedPerPartition.get(record.partition) ?? []),
          record.key,
        ]);
      }
    }
    expect(expectedPerPartition.size, 'the documents spread over every partition').to.equal(partitions);
    await kit.produce(topic, records);

    const seenPerPartition = new Map<number, string[]>();
    const versionsPerDocument = new Map<string, number[]>();
    const activePerPartition = new Map<number, number>();
    let active = 0;
    let maxActive = 0;
    let overlapWithinPartition = false;
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      partitionsConcurrently: partitions,
      handler: async (event, { changeId, record }) => {
        active++;
        maxActive = Math.max(maxActive, active);
        const inPartition = (activePerPartition.get(record.partition) ?? 0) + 1;
        activePerPartition.set(record.partition, inPartition);
        if (inPartition > 1) overlapWithinPartition = true;
        try {
          await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
          seenPerPartition.set(record.partition, [
            ...(seenPerPartition.get(record.partition) ?? []),
            changeId,
          ]);
          if (event.operationType === 'insert' || event.operationType === 'update') {
            const id = String(event.documentKey._id);
            versionsPerDocument.set(id, [
              ...(versionsPerDocument.get(id) ?? []),
              Number(event.fullDocument?.version),
            ]);
          }
        } finally {
          activePerPartition.set(record.partition, inPartition - 1);
          active--;
        }
      },
    });

    await waitFor(
      async () =>
        (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === records.length,
      {
        timeoutMs: 60_000,
        message: () => `${records.length} changes handled`,
      },
    );

    for (const [partition, expected] of expectedPerPartition) {
      expect(seenPerPartition.get(partition), `partition ${partition} in offset order`).to.deep.equal(
        expected,
      );
    }
    for (const [id, versions] of versionsPerDocument) {
      expect(versions, `versions of document ${id}`).to.deep.equal([0, 1, 2, 3, 4]);
    }
    expect(overlapWithinPartition, 'two records of one partition handled at once').to.equal(false);
    expect(maxActive, 'handlers of different partitions ran at the same time').to.be.greaterThan(1);
  });
});
