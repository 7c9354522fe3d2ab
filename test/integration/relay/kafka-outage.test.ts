import { expect } from 'chai';
import { collectTopic, kafkaClient } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, parseMetrics, sumMetric } from '../../support/relayProcess.js';
import { startDedicatedKafka, type KafkaService } from '../../support/services.js';
import { Workload, awaitDelivery, formatReport, verifyDelivery } from '../../support/workload.js';
import { READ_COMMITTED, readTopicRecords, requireKcat } from '../../support/kcat.js';
import { chooseSeed } from '../../support/random.js';
import { waitFor } from '../../support/wait.js';

describe('relay: Kafka outage (a dedicated broker is stopped and started mid-stream)', function () {
  let ctx: RelayTestContext;
  let kafka: KafkaService;

  before(async function () {
    this.timeout(300_000);
    kafka = await startDedicatedKafka();
  });
  after(async () => {
    await killAllRelays();
    await kafka?.stop();
    await ctx?.close();
  });

  it('loses nothing, needs no relay restart, keeps in-flight events under the limit and the checkpoint put', async function () {
    ctx = await relayTestContext('kafka-outage');
    const MAX_IN_FLIGHT = 50;
    const relay = await startRelayReady(
      ctx.env({
        KAFKA_BROKERS: kafka.brokers,
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
        RELAY_CHECKPOINT_MODE: 'batched',
        KAFKA_RETRY_MAX_MS: '1000',
        KAFKA_TOPIC_PARTITIONS: '1',
      }),
    );
    const pid = relay.child.pid;
    let sampled = false;
    // The writer goes on through the outage until the samples are taken (and at least 1500 changes).
    const workload: Workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: ['items'],
      documents: 30,
      changes: 100_000,
      pauseMs: 3,
      stop: () => sampled && workload.log.length >= 1500,
    });
    const done = workload.run();
    let writtenAtLimit = 0;
    let checkpointDuringOutage: string | undefined;
    const inFlightSamples: number[] = [];
    const rssSamples: number[] = [];
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await kafka.stop();
      // Wait until the relay noticed (not ready) while Kafka is down, and until reading stopped at the limit:
      // the writer goes on, so without the limit the relay would read on.
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`)).status === 503,
        {
          timeoutMs: 60_000,
          message: '/readyz to answer 503 while Kafka is down',
        },
      );
      const inFlight = async () =>
        sumMetric(parseMetrics(await relay.metrics()), 'mongo_kafka_relay_in_flight_events');
      await waitFor(async () => (await inFlight()) >= MAX_IN_FLIGHT, {
        timeoutMs: 60_000,
        message: () => `reading to reach RELAY_MAX_IN_FLIGHT=${MAX_IN_FLIGHT} while Kafka is down`,
      });
      writtenAtLimit = workload.log.length;
      checkpointDuringOutage = (await ctx.readCheckpoint())?.token?._data;
      for (let i = 0; i < 8; i++) {
        const m = parseMetrics(await relay.metrics());
        inFlightSamples.push(sumMetric(m, 'mongo_kafka_relay_in_flight_events'));
        rssSamples.push(sumMetric(m, 'process_resident_memory_bytes'));
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      sampled = true; // the writer stops now, also when a step above failed
    }
    expect(workload.log.length, 'changes kept coming while reading was paused').to.be.greaterThan(
      writtenAtLimit,
    );
    expect(inFlightSamples, 'reading paused exactly at the limit').to.deep.equal(
      Array(8).fill(MAX_IN_FLIGHT),
    );
    expect(
      (await ctx.readCheckpoint())?.token?._data,
      'checkpoint does not move while Kafka is down',
    ).to.equal(checkpointDuringOutage);
    await kafka.start();
    const log = await done;
    const collector = await collectTopic(ctx.topic('items'), { kafka: kafkaClient('outage', kafka.brokers) });
    try {
      const report = await awaitDelivery(log, () => collector.messages);
      expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
      console.log(
        `      ${formatReport('kafka-outage', report)} max_in_flight_seen=${Math.max(...inFlightSamples)}`,
      );
      expect(report.orderViolations).to.equal(0);
      expect(relay.child.pid).to.equal(pid);
      expect(relay.child.exitCode, 'the relay never exited').to.equal(null);
      expect(Math.max(...rssSamples)).to.be.lessThan(400 * 1024 * 1024);
      const m = parseMetrics(await relay.metrics());
      expect(sumMetric(m, 'mongo_kafka_relay_publish_errors_total')).to.be.greaterThan(0);
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`)).status === 200,
        {
          timeoutMs: 30_000,
          message: '/readyz back to 200',
        },
      );
    } finally {
      await collector.stop();
    }
  });

  it('exactly-once: an outage longer than the transaction timeout is ridden out (no exit 8), and a read_committed reader (kcat) sees every change once', async function () {
    this.timeout(600_000);
    requireKcat(this);
    await ctx?.close();
    ctx = await relayTestContext('eo-outage');
    const relay = await startRelayReady(
      ctx.env({
        KAFKA_BROKERS: kafka.brokers,
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_DELIVERY: 'exactly-once',
        KAFKA_POSITIONS_TOPIC: `${ctx.topicPrefix}.positions`,
        KAFKA_TRANSACTION_TIMEOUT_MS: '8000',
        KAFKA_RETRY_MAX_MS: '1000',
        KAFKA_TOPIC_PARTITIONS: '2',
      }),
    );
    let outageOver = false;
    const workload: Workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: ['items'],
      documents: 30,
      changes: 100_000,
      pauseMs: 3,
      seed: chooseSeed(),
      stop: () => outageOver && workload.log.length >= 1500,
    });
    const done = workload.run();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await kafka.stop();
      // Longer than KAFKA_TRANSACTION_TIMEOUT_MS: the coordinator aborts the open transaction when it is back.
      await new Promise((r) => setTimeout(r, 20_000));
      await kafka.start();
    } finally {
      outageOver = true;
    }
    const log = await done;
    const topic = ctx.topic('items');
    let report = verifyDelivery(log, []);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const records = await readTopicRecords(kafka.brokers, topic, READ_COMMITTED);
      report = verifyDelivery(log, records);
      if (report.lost === 0 || relay.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    console.log(`      ${formatReport('exactly-once-kafka-outage', report, { outage_s: 20 })}`);
    expect(
      relay.child.exitCode,
      `the relay never exited; last logs:\n${relay.stdout.slice(-5).join('\n')}`,
    ).to.equal(null);
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.duplicates, 'duplicates seen by a read_committed reader').to.equal(0);
    expect(report.orderViolations).to.equal(0);
  });
});
