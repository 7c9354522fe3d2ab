import { createServer, connect, type Socket } from 'node:net';

import { expect } from 'chai';
import { Kafka, logLevel, type ISocketFactory } from 'kafkajs';
import { ObjectId } from 'mongodb';

import { ConsumerCrashedError, ConsumerMetricName } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { ConsumerTestKit, metricValue, services, waitFor } from './helpers.js';

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 1;
}

/**
 * A kafkajs client whose connections the test can break: `breakAll()` destroys every socket and sends
 * new connections to a closed port — the broker unreachable for this client only (the shared broker
 * keeps running for everyone else).
 */
async function breakableKafka(): Promise<{ kafka: Kafka; breakAll(): void }> {
  const deadPort = await closedPort();
  const sockets = new Set<Socket>();
  let broken = false;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = broken
      ? connect({ host: '127.0.0.1', port: deadPort }, onConnect)
      : connect({ host, port }, onConnect);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    return socket;
  };
  const kafka = new Kafka({
    clientId: 'consumer-health-it',
    brokers: services().brokers.split(','),
    socketFactory,
    connectionTimeout: 1_000,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 300 },
    logLevel: logLevel.NOTHING,
  });
  return {
    kafka,
    breakAll: () => {
      broken = true;
      // With an error: kafkajs listens for 'error' and 'end', not 'close' (a bare destroy() would leave
      // its requests waiting for their timeout).
      for (const socket of sockets) socket.destroy(new Error('connection cut by the test'));
    },
  };
}

describe('ChangeConsumer health and a crashed kafkajs consumer (integration)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('reports running and healthy while it consumes', async () => {
    const topic = await kit.topic('health-ok');
    await kit.produce(topic, [toRelayRecord(factory.insert({ _id: new ObjectId() }))]);
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({ ...options, handler: () => undefined });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 1,
      { timeoutMs: 30_000, message: 'the change handled' },
    );
    expect(consumer.health()).to.deep.include({ status: 'running', healthy: true, crashes: 0, blocked: [] });
    await consumer.stop();
    expect(consumer.health()).to.deep.include({ status: 'stopped', healthy: false });
    await consumer.closed; // resolves after a stop
  });

  it('rejects `closed` and turns health() unhealthy when kafkajs gives up on the consumer (no restart)', async () => {
    const topic = await kit.topic('health-crash');
    await kit.produce(topic, [toRelayRecord(factory.insert({ _id: new ObjectId() }))]);
    const { kafka, breakAll } = await breakableKafka();
    const options = kit.baseOptions(topic);
    const consumer = await kit.start({
      ...options,
      kafka,
      consumerConfig: {
        ...options.consumerConfig,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 300, restartOnFailure: async () => false },
      },
      handler: () => undefined,
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.handled, { topic })) === 1,
      { timeoutMs: 30_000, message: 'the change handled before the break' },
    );
    let outcome: unknown = 'pending';
    consumer.closed.then(
      () => (outcome = 'resolved'),
      (error: unknown) => (outcome = error),
    );

    breakAll();
    await waitFor(() => outcome !== 'pending', {
      timeoutMs: 60_000,
      message: '`closed` settles after kafkajs crashed',
    });
    expect(outcome).to.be.instanceOf(ConsumerCrashedError);
    expect((outcome as Error).message).to.match(/restart/i);
    const health = consumer.health();
    expect(health).to.deep.include({ status: 'failed', healthy: false, crashes: 1 });
    expect(health.lastCrash?.restarting).to.equal(false);
    expect(health.lastCrash?.error).to.be.a('string').and.not.equal('');
  });
});
