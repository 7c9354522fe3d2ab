/**
 * The relay's metrics as Prometheus scrapes them: gauges that are unknown have no sample (a 0 would
 * read as healthy), the ns label is bounded, and the oplog headroom follows the checkpoint.
 */
import { expect } from 'chai';
import { RelayMetrics } from '../../../src/metrics/relayMetrics.js';

async function samples(metrics: RelayMetrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const LAG = 'mongo_kafka_relay_source_lag_seconds';
const AGE = 'mongo_kafka_relay_checkpoint_age_seconds';
const WINDOW = 'mongo_kafka_relay_oplog_window_seconds';
const HEADROOM = 'mongo_kafka_relay_oplog_headroom_seconds';
const KNOWN = 'mongo_kafka_relay_oplog_window_known';

describe('RelayMetrics', () => {
  describe('gauges of values the relay does not know yet', () => {
    it('have no sample at all before the first change or checkpoint (not 0)', async () => {
      const m = await samples(new RelayMetrics('test'));
      for (const name of [LAG, AGE]) expect(m.has(name), name).to.equal(false);
      const text = await new RelayMetrics('test').registry.metrics();
      expect(text).to.contain(`# TYPE ${LAG} gauge`);
    });

    it('report the lag and the checkpoint age once known, computed at scrape time', async () => {
      const metrics = new RelayMetrics('test');
      const now = Date.now() / 1000;
      metrics.observeClusterTime(Math.floor(now) - 30);
      metrics.checkpointWritten(new Date(Date.now() - 12_000), Math.floor(now) - 31);
      const m = await samples(metrics);
      expect(m.get(LAG)).to.be.within(29, 32);
      expect(m.get(AGE)).to.be.within(11.5, 13);
      expect(m.get('mongo_kafka_relay_checkpoint_writes_total')).to.equal(1);
    });

    it('count the checkpoint age from a predecessor’s write until this relay writes one', async () => {
      const metrics = new RelayMetrics('test');
      metrics.checkpointFound(new Date(Date.now() - 600_000), null);
      expect((await samples(metrics)).get(AGE)).to.be.within(599, 602);
      expect((await samples(metrics)).get('mongo_kafka_relay_checkpoint_writes_total')).to.equal(0);
    });
  });

  describe('exactly-once transactions', () => {
    it('are exported from the first scrape with no transaction counted, and count records and commit time per transaction', async () => {
      const metrics = new RelayMetrics('test');
      const before = await samples(metrics);
      expect(before.get('mongo_kafka_relay_kafka_transaction_records_count')).to.equal(0);
      expect(before.get('mongo_kafka_relay_kafka_transaction_commit_seconds_count')).to.equal(0);
      metrics.kafkaTransactionRecords.observe(1000);
      metrics.kafkaTransactionRecords.observe(0);
      metrics.kafkaTransactionCommit.observe(0.012);
      const after = await samples(metrics);
      expect(after.get('mongo_kafka_relay_kafka_transaction_records_count')).to.equal(2);
      expect(after.get('mongo_kafka_relay_kafka_transaction_records_sum')).to.equal(1000);
      expect(after.get('mongo_kafka_relay_kafka_transaction_records_bucket{le="0"}')).to.equal(1);
      expect(after.get('mongo_kafka_relay_kafka_transaction_commit_seconds_bucket{le="0.025"}')).to.equal(1);
    });
  });

  describe('oplog window and headroom', () => {
    // Issue 20 item 2: the series must exist from the first scrape (an alert rule or `absent()` sees
    // them at once), as NaN, never as a number that was not measured.
    it('are exported from the first scrape, before any reading: NaN, and oplog_window_known 0', async () => {
      const text = await new RelayMetrics('test').registry.metrics();
      // prom-client writes NaN as "Nan", which Prometheus parses as NaN (case-insensitive).
      expect(text).to.match(new RegExp(`^${WINDOW} NaN$`, 'mi'));
      expect(text).to.match(new RegExp(`^${HEADROOM} NaN$`, 'mi'));
      expect(text).to.match(new RegExp(`^${KNOWN} 0$`, 'm'));
    });

    it('report the window, and the headroom as checkpoint position minus the oldest entry', async () => {
      const metrics = new RelayMetrics('test');
      metrics.oplogBounds({ oldest: 1_000, newest: 4_600 });
      let m = await samples(metrics);
      expect(m.get(WINDOW)).to.equal(3_600);
      expect(m.get(HEADROOM), 'no checkpoint yet').to.satisfy(Number.isNaN);
      metrics.checkpointWritten(new Date(), 1_900);
      m = await samples(metrics);
      expect(m.get(HEADROOM)).to.equal(900);
      expect(m.get(KNOWN)).to.equal(1);
      metrics.oplogBounds(null);
      m = await samples(metrics);
      expect(m.get(WINDOW)).to.satisfy(Number.isNaN);
      expect(m.get(HEADROOM)).to.satisfy(Number.isNaN);
      expect(m.get(KNOWN)).to.equal(0);
    });
  });

  describe('the ns label of events_total', () => {
    it('keeps the first N namespaces and counts the rest under _other', async () => {
      const metrics = new RelayMetrics('test', { nsLabelLimit: 2, checkpointId: 'c' });
      for (const ns of ['a.x', 'a.y', 'a.z', 'a.x', 'b.w'])
        metrics.events.inc({ ns, operation_type: 'insert' });
      const m = await samples(metrics);
      const series = [...m.keys()].filter((k) => k.startsWith('mongo_kafka_relay_events_total'));
      expect(series.sort()).to.deep.equal([
        'mongo_kafka_relay_events_total{ns="_other",operation_type="insert"}',
        'mongo_kafka_relay_events_total{ns="a.x",operation_type="insert"}',
        'mongo_kafka_relay_events_total{ns="a.y",operation_type="insert"}',
      ]);
      expect(m.get('mongo_kafka_relay_events_total{ns="_other",operation_type="insert"}')).to.equal(2);
      expect(m.get('mongo_kafka_relay_events_total{ns="a.x",operation_type="insert"}')).to.equal(2);
    });

    it('drops it (empty value, which Prometheus stores as no label) with a limit of 0', async () => {
      const metrics = new RelayMetrics('test', { nsLabelLimit: 0, checkpointId: 'c' });
      metrics.events.inc({ ns: 'a.x', operation_type: 'insert' });
      metrics.events.inc({ ns: 'a.y', operation_type: 'insert' }, 2);
      const m = await samples(metrics);
      expect(m.get('mongo_kafka_relay_events_total{ns="",operation_type="insert"}')).to.equal(3);
    });
  });

  it('names the relay by its checkpoint id in build_info', async () => {
    const m = await samples(new RelayMetrics('1.2.3', { nsLabelLimit: 1, checkpointId: 'orders' }));
    expect(m.get('mongo_kafka_relay_build_info{version="1.2.3",checkpoint_id="orders"}')).to.equal(1);
  });

  it('counts failed checkpoint writes', async () => {
    const metrics = new RelayMetrics('test');
    metrics.checkpointWriteFailures.inc();
    expect((await samples(metrics)).get('mongo_kafka_relay_checkpoint_write_failures_total')).to.equal(1);
  });
});
