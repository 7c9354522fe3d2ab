import { expect } from 'chai';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { killAllRelays, startRelay, parseMetrics, sumMetric, freePort } from '../support/relayProcess.js';
import { startDedicatedKafka, type KafkaService } from '../support/services.js';
import { waitFor } from '../support/wait.js';

describe('metrics and probes', function () {
  let ctx: RelayTestContext;
  let kafka: KafkaService;
  before(async function () {
    this.timeout(300_000);
    ctx = await relayTestContext('metrics');
    kafka = await startDedicatedKafka();
  });
  after(async () => {
    await killAllRelays();
    await kafka?.stop();
    await ctx?.close();
  });

  it('/readyz is 503 before the stream opens, 200 while streaming, 503 after Kafka goes away; /metrics counts every event', async () => {
    const port = await freePort();
    // Hold the lease elsewhere first, so the relay is alive but not streaming yet.
    const env = ctx.env({
      KAFKA_BROKERS: kafka.brokers,
      RELAY_WATCH: `${ctx.db}.items`,
      METRICS_PORT: String(port),
      KAFKA_RETRY_MAX_MS: '500',
    });
    const blocker = await startRelay({ ...env, METRICS_PORT: String(await freePort()) });
    await blocker.waitForLog((l) => l.msg === 'change stream open', 60_000);
    const relay = await startRelay(env);
    await relay.waitForLog(
      (l) => String(l.msg).includes('waiting for it to stop or expire'),
      60_000,
      'the relay to wait for the lease',
    );
    const before = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(before.status).to.equal(503);
    expect(await before.json()).to.include({ ready: false, changeStreamOpen: false });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).to.equal(200);
    await blocker.kill('SIGTERM');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
      timeoutMs: 60_000,
      message: 'ready',
    });
    // From the moment it is ready, the oplog gauges are series (a value, or NaN until measured), so an
    // alert rule never meets an absent series on a healthy relay (issue 20 item 2).
    const atReady = await relay.metrics();
    for (const name of [
      'mongo_kafka_relay_oplog_window_seconds',
      'mongo_kafka_relay_oplog_headroom_seconds',
      'mongo_kafka_relay_oplog_window_known',
    ]) {
      expect(atReady, name).to.match(new RegExp(`^${name} \\S+$`, 'm'));
    }
    const N = 25;
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    for (let i = 0; i < N; i++) await items.insertOne({ _id: i });
    const metrics = await waitFor(
      async () => {
        const m = parseMetrics(await relay.metrics());
        return sumMetric(m, 'mongo_kafka_relay_events_total') === N && m;
      },
      { timeoutMs: 60_000, message: `events_total to reach ${N}` },
    );
    expect(
      metrics.get(`mongo_kafka_relay_events_total{ns="${ctx.db}.items",operation_type="insert"}`),
    ).to.equal(N);
    // The reader thread's heap, which the process's nodejs_heap_* metrics (the main thread's) leave out.
    for (const kind of ['used', 'total'])
      expect(
        metrics.get(`mongo_kafka_relay_reader_thread_heap_bytes{kind="${kind}"}`),
        kind,
      ).to.be.greaterThan(1 << 20);
    for (const name of [
      'mongo_kafka_relay_publish_latency_seconds_count',
      'mongo_kafka_relay_source_lag_seconds',
      'mongo_kafka_relay_in_flight_events',
      'mongo_kafka_relay_checkpoint_writes_total',
      'mongo_kafka_relay_checkpoint_age_seconds',
      'mongo_kafka_relay_publish_errors_total',
      'process_resident_memory_bytes',
    ]) {
      expect(
        [...metrics.keys()].some((k) => k === name || k.startsWith(`${name}{`)),
        name,
      ).to.equal(true);
    }
    expect(metrics.get('mongo_kafka_relay_publish_latency_seconds_count')).to.equal(N);
    expect([...metrics.keys()].some((k) => k.startsWith('mongo_kafka_relay_build_info{version="'))).to.equal(
      true,
    );
    const text = await relay.metrics();
    for (const name of ['mongo_kafka_relay_dead_letter_total', 'mongo_kafka_relay_stream_restarts_total']) {
      expect(text).to.contain(`# TYPE ${name} counter`);
    }
    await kafka.stop();
    await items.insertOne({ _id: 1000 });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 503, {
      timeoutMs: 60_000,
      message: '/readyz 503 after Kafka went away',
    });
    await kafka.start();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
      timeoutMs: 90_000,
      message: 'ready again',
    });
  });
});
