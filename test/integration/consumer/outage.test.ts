import { expect } from 'chai';
import { MongoClient, ObjectId } from 'mongodb';
import { Registry } from 'prom-client';

import { ConsumerMetricName } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord, type RelayRecord } from '../../support/change-records.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcpProxy.js';
import { ConsumerTestKit, metricValue, services, waitFor } from './helpers.js';

describe('ChangeConsumer during a MongoDB outage (integration, TCP proxy)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
  let proxy: TcpProxy | undefined;
  let proxied: MongoClient | undefined;

  before(() => kit.setUp());
  afterEach(async () => {
    await kit.stopConsumers();
    await proxied?.close().catch(() => undefined);
    await proxy?.close();
    proxy = undefined;
    proxied = undefined;
  });
  after(() => kit.tearDown());

  it('pauses its partitions and returns from the batch instead of blocking in it, so a rebalance goes on without waiting for MongoDB', async () => {
    const partitions = 2;
    const topic = await kit.topic('mongo-outage', partitions);
    const target = new URL(services().mongoUri);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 27017));
    proxied = new MongoClient(
      `mongodb://127.0.0.1:${proxy.port}/?directConnection=true&serverSelectionTimeoutMS=1000&heartbeatFrequencyMS=500`,
    );
    await proxied.connect();

    const options = kit.baseOptions(topic);
    // A rebalance waits up to the longest rebalance timeout of the members for every member to rejoin:
    // a member blocked inside its batch would hold the group for 5 minutes here.
    const consumerConfig = {
      maxWaitTimeInMs: 200,
      sessionTimeout: 10_000,
      heartbeatInterval: 500,
      rebalanceTimeout: 300_000,
    };
    const handledByA: string[] = [];
    const a = await kit.start({
      ...options,
      consumerConfig,
      mongo: { client: proxied },
      outageRetry: { initialDelayMs: 200, maxDelayMs: 1_000 },
      handler: (_event, { changeId }) => void handledByA.push(changeId),
    });

    proxy.cut();
    const records: RelayRecord[] = Array.from({ length: 8 }, (_, seq) =>
      toRelayRecord(factory.insert({ _id: new ObjectId(), seq }), { partitions }),
    );
    expect(new Set(records.map((record) => record.partition)).size, 'records on both partitions').to.equal(2);
    await kit.produce(topic, records);
    await waitFor(() => a.health().blocked.length > 0, {
      timeoutMs: 30_000,
      message: 'member A reports its partitions blocked on MongoDB',
    });
    expect(a.health().blocked[0]).to.include({ reason: 'mongodb' });
    expect(handledByA, 'nothing handled without the seen collection').to.deep.equal([]);

    // Member B (MongoDB reachable) joins: the group rebalances; A must rejoin at once.
    const registryB = new Registry();
    const handledByB: string[] = [];
    await kit.start({
      ...options,
      consumerConfig,
      registry: registryB,
      handler: (_event, { changeId }) => void handledByB.push(changeId),
    });
    await waitFor(() => handledByB.length > 0, {
      timeoutMs: 60_000,
      message: 'member B handles the partition it was given (the rebalance did not wait for A)',
    });

    proxy.restore();
    await waitFor(
      () => records.every((record) => handledByA.includes(record.key) || handledByB.includes(record.key)),
      { timeoutMs: 60_000, message: 'every change handled once MongoDB is back' },
    );
    await waitFor(() => a.health().blocked.length === 0, {
      timeoutMs: 30_000,
      message: () => `member A no longer blocked (${JSON.stringify(a.health().blocked)})`,
    });
    expect(await metricValue(registryB, ConsumerMetricName.deadLettered, { topic })).to.equal(0);
  });
});
