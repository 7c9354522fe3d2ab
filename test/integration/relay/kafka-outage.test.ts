import { expect } from 'chai';
import { collectTopic, kafkaClient } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, parseMetrics, sumMetric } from '../../support/relayProcess.js';
import { startDedicatedKafka, type KafkaService } from '../../support/services.js';
import { Workload, awaitDelivery, formatReport } from '../../support/workload.js';
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
    let writing = true;
    const workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: ['items'],
      documents: 30,
      changes: 1500,
      pauseMs: 3,
    });
    const done = workload.run().finally(() => (writing = false));
    await new Promise((r) => setTimeout(r, 1000));
    await kafka.stop();
    const inFlightSamples: number[] = [];
    const rssSamples: number[] = [];
    // Wait until the relay noticed (not ready) while Kafka is down, then watch it for a few seconds.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`)).status === 503, {
      timeoutMs: 60_000,
      message: '/readyz to answer 503 while Kafka is down',
    });
    const checkpointDuringOutage = (await ctx.readCheckpoint())?.token?._data;
    for (let i = 0; i < 8; i++) {
      const m = parseMetrics(await relay.metrics());
      inFlightSamples.push(sumMetric(m, 'mongo_kafka_relay_in_flight_events'));
      rssSamples.push(sumMetric(m, 'process_resident_memory_bytes'));
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(
      (await ctx.readCheckpoint())?.token?._data,
      'checkpoint does not move while Kafka is down',
    ).to.equal(checkpointDuringOutage);
    await kafka.start();
    const log = await done;
    expect(writing).to.equal(false);
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
      expect(Math.max(...inFlightSamples)).to.be.at.most(MAX_IN_FLIGHT);
      expect(Math.max(...inFlightSamples), 'reading paused at the limit').to.be.greaterThan(0);
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
});
