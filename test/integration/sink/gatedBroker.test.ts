/**
 * The sink against one real broker whose client listener is advertised through a gate
 * (test/support/kafkaGate.ts), so a test can cut the relay's path to Kafka or make the broker's
 * answers carry an error:
 * - producer state lost: the answers of the producer's connections say OUT_OF_ORDER_SEQUENCE_NUMBER;
 *   the sink must re-create its producer (new connections) and deliver, not retry forever;
 * - refused: the answers say TOPIC_AUTHORIZATION_FAILED; the sink must give up with an error naming
 *   the topic and the permission (the relay exits 6);
 * - zombie publishing (issue 10 item 8): a relay paused longer than its lease (SIGSTOP here; a long GC
 *   or a frozen VM in production) must not send what it had queued once it runs again, after a second
 *   relay took over; it exits with the lease code 5 instead.
 */
import { expect } from 'chai';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { KafkaSink, type KafkaSinkOptions } from '../../../src/sink/kafkaSink.js';
import { KafkaRefusedError } from '../../../src/sink/errors.js';
import { TransactionalKafkaSink } from '../../../src/sink/transactionalSink.js';
import { readTopicWithKcat, requireKcat } from '../../support/kcat.js';
import type { OutboundRecord } from '../../../src/pipeline/toRecord.js';
import { startDedicatedKafkaCluster } from '../../support/services.js';
import { startKafkaGate, type KafkaGate } from '../../support/kafkaGate.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, parseMetrics, sumMetric } from '../../support/relayProcess.js';
import { startRelayPatiently } from '../../faults/kafkaClusterFixture.js';
import { collectTopic, kafkaClient, uniqueTopic } from '../../support/kafka.js';
import { waitFor } from '../../support/wait.js';
import type { KafkaCluster } from '../../../scripts/services/kafkaCluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function record(topic: string, value: string): OutboundRecord {
  return {
    topic,
    key: value,
    value,
    headers: {},
    partitionKey: Buffer.from(value),
    size: value.length * 2,
    ns: 'test.gated',
    operationType: 'insert',
  };
}

describe('sink and relay against a gated broker', function () {
  this.timeout(600_000);
  let gate: KafkaGate | undefined;
  let cluster: KafkaCluster;
  let ctx: RelayTestContext | undefined;

  before(async function () {
    this.timeout(400_000);
    // One broker whose client listener is advertised through a gate: cutting the gate cuts the
    // paused relay's whole path to Kafka, while the second relay uses the direct listener.
    cluster = await startDedicatedKafkaCluster({
      nodes: 1,
      advertise: async ({ port }) => {
        gate = await startKafkaGate(port);
        return gate.port;
      },
    });
  });

  after(async () => {
    await killAllRelays();
    await ctx?.close();
    await cluster?.stop();
    await gate?.close();
  });

  const sinkFor = (topic: string, extra: Partial<KafkaSinkOptions> = {}): KafkaSink =>
    new KafkaSink(gatedKafka('gated'), sinkOptions(topic, extra));

  const gatedKafka = (clientId: string): Kafka =>
    new Kafka({ clientId, brokers: cluster.brokers.split(','), logLevel: logLevel.NOTHING });

  const sinkOptions = (topic: string, extra: Partial<KafkaSinkOptions> = {}): KafkaSinkOptions => ({
    maxMessageBytes: 1_000_000,
    maxBatchBytes: 900_000,
    maxBatchRecords: 1000,
    retryMaxMs: 500,
    deadLetterTopic: `${topic}.dead-letter`,
    createTopics: { partitions: 1, replicationFactor: -1 },
    logger: pino({ level: 'silent' }),
    ...extra,
  });

  it('producer state lost (OUT_OF_ORDER_SEQUENCE_NUMBER): re-creates the producer and delivers', async () => {
    const topic = uniqueTopic('producer-state');
    const resets: string[] = [];
    const sink = sinkFor(topic, { onProducerReset: (type) => resets.push(type) });
    try {
      await sink.connect();
      expect(await sink.publish(record(topic, 'before'))).to.equal('published');
      gate!.failProduceOnOpenConnections(45);
      const outcome = await Promise.race([
        sink.publish(record(topic, 'after')),
        sleep(60_000).then(() => 'still waiting after 60 s'),
      ]);
      expect(outcome).to.equal('published');
      expect(resets).to.deep.equal(['OUT_OF_ORDER_SEQUENCE_NUMBER']);
      expect(gate!.rewrittenProduceResponses()).to.be.greaterThan(0);
      const reader = await collectTopic(topic, {
        kafka: kafkaClient('producer-state', cluster.internalBrokers),
      });
      try {
        const values = (await reader.waitForCount(2, 60_000)).map((m) => m.value);
        expect(values).to.include('after');
        // The broker wrote the first attempt although its answer said otherwise: at most one copy more.
        expect(values.filter((v) => v === 'before')).to.have.length(1);
      } finally {
        await reader.stop();
      }
    } finally {
      await sink.stop(Date.now() + 5000);
    }
  });

  it('exactly-once, producer state lost inside a transaction: recovers with a new producer, and a read_committed reader (kcat) sees each record once', async function () {
    requireKcat(this);
    const topic = uniqueTopic('eo-producer-state');
    const resets: string[] = [];
    const sink = new TransactionalKafkaSink(
      gatedKafka('gated-eo'),
      sinkOptions(topic, { onProducerReset: (type) => resets.push(type) }),
      {
        transactionalId: `${topic}.txn`,
        positionsTopic: `${topic}.positions`,
        checkpointId: 'gated',
        owner: 'gated-test',
        maxTransactionMs: 500,
        maxTransactionRecords: 1000,
        maxTransactionBytes: 4_000_000,
        transactionTimeoutMs: 60_000,
        idlePositionMs: 1000,
        readTimeoutMs: 60_000,
      },
    );
    try {
      await sink.connect();
      expect(await sink.publish(record(topic, 'before'))).to.equal('published');
      gate!.failProduceOnOpenConnections(45);
      const outcome = await Promise.race([
        sink.publish(record(topic, 'after')),
        sleep(60_000).then(() => 'still waiting after 60 s'),
      ]);
      expect(outcome).to.equal('published');
      expect(resets).to.deep.equal(['OUT_OF_ORDER_SEQUENCE_NUMBER']);
      expect(gate!.rewrittenProduceResponses()).to.be.greaterThan(0);
      const read = async (level: string) =>
        (await readTopicWithKcat(cluster.internalBrokers, topic, 60_000, { 'isolation.level': level })).map(
          (r) => r.value?.toString('utf8'),
        );
      // The broker wrote the first attempt of "after" in the transaction that recovery aborted.
      expect(await read('read_committed')).to.deep.equal(['before', 'after']);
      expect(await read('read_uncommitted')).to.deep.equal(['before', 'after', 'after']);
    } finally {
      await sink.stop(Date.now() + 5000);
    }
  });

  it('refused (TOPIC_AUTHORIZATION_FAILED on produce): gives up with the topic and the permission', async () => {
    const topic = uniqueTopic('refused');
    const sink = sinkFor(topic);
    try {
      await sink.connect();
      await sink.createMissingTopics([topic]);
      // The topic's metadata is cached: the next produce goes out on the connections open now.
      expect(await sink.publish(record(topic, 'allowed'))).to.equal('published');
      gate!.failProduceOnOpenConnections(29);
      const error = await sink.publish(record(topic, 'refused')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(KafkaRefusedError);
      expect((error as Error).message)
        .to.contain(`"${topic}"`)
        .and.to.contain('WRITE');
      const later = await sink.publish(record(topic, 'later')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(later, 'a refused sink takes nothing more').to.be.instanceOf(KafkaRefusedError);
    } finally {
      await sink.stop(Date.now() + 5000);
    }
  });

  it('zombie: the paused owner publishes nothing more after SIGCONT and exits 5', async () => {
    ctx = await relayTestContext('zombie');
    const topic = ctx.topic('orders');
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.orders`,
      RELAY_LEASE_TTL_MS: '4000',
      RELAY_LEASE_RENEW_MS: '1000',
      KAFKA_RETRY_MAX_MS: '1000',
      KAFKA_TOPIC_PARTITIONS: '1',
      // Batched checkpoints let many changes be in flight at once, so the sink holds a queue.
      RELAY_CHECKPOINT_MODE: 'batched',
    });
    const first = await startRelayPatiently({ ...env, KAFKA_BROKERS: cluster.brokers });
    const reader = await collectTopic(topic, {
      kafka: kafkaClient('zombie-reader', cluster.internalBrokers),
    });
    const orders = ctx.mongo.db(ctx.db).collection<{ _id: number }>('orders');
    try {
      await orders.insertMany(Array.from({ length: 20 }, (_, i) => ({ _id: i })));
      await reader.waitForCount(20, 60_000);

      // Kafka unreachable for the first relay: the next changes wait in its sink.
      gate!.cut();
      await orders.insertMany(Array.from({ length: 30 }, (_, i) => ({ _id: 100 + i })));
      await waitFor(
        async () =>
          sumMetric(parseMetrics(await first.metrics()), 'mongo_kafka_relay_in_flight_events') >= 30,
        { timeoutMs: 60_000, message: 'the first relay to hold 30 unacknowledged changes' },
      );
      first.child.kill('SIGSTOP');
      await sleep(6000); // past the 4 s lease

      const second = await startRelayPatiently({ ...env, KAFKA_BROKERS: cluster.internalBrokers });
      await second.waitForLog((l) => l.msg === 'lease acquired', 60_000, 'the second relay to take over');
      await waitFor(() => new Set(reader.messages.map((m) => m.key)).size >= 50, {
        timeoutMs: 120_000,
        message: () => `the second relay to publish all 50 changes (got ${reader.messages.length} records)`,
      });
      const admin = new Kafka({
        brokers: cluster.internalBrokers.split(','),
        logLevel: logLevel.NOTHING,
      }).admin();
      await admin.connect();
      try {
        const before = await admin.fetchTopicOffsets(topic);

        gate!.restore();
        first.child.kill('SIGCONT');
        const code = await Promise.race([first.exited, sleep(60_000).then(() => -1)]);
        expect(code, 'the paused relay exits with the lease code').to.equal(5);
        await sleep(3000);
        const after = await admin.fetchTopicOffsets(topic);
        console.log(
          `      zombie: offsets before SIGCONT ${JSON.stringify(before.map((p) => p.high))}, after exit ${JSON.stringify(after.map((p) => p.high))}`,
        );
        expect(after, 'nothing published by the paused relay after it resumed').to.deep.equal(before);
        const lastError = first.logs.filter((l) => l.level >= 50).map((l) => l.msg);
        expect(lastError.join(' | ')).to.match(/lease|no longer owns/);
      } finally {
        await admin.disconnect();
      }
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGCONT');
      await reader.stop();
    }
  });
});
