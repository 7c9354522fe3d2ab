/**
 * The three-broker fault scenarios: one relay (a real process) per checkpoint mode publishes through
 * the gates while its writer writes throughout; one broker fault lands mid-stream on all of them; an
 * independent consumer on the brokers' internal listeners reads every topic back, once the relays have
 * caught up, and compares it with the writer's log (and the brokers' own record count).
 */
import { expect } from 'chai';
import { MetricName } from '../../src/metrics/names.js';
import { killAllRelays, parseMetrics, sumMetric, type RelayProcess } from '../support/relayProcess.js';
import { relayTestContext } from '../support/relayFixture.js';
import {
  Workload,
  formatReport,
  verifyDelivery,
  type DeliveryReport,
  type WrittenChange,
} from '../support/workload.js';
import { collectTopic, kafkaClient, type CollectedMessage } from '../support/kafka.js';
import { READ_COMMITTED, readTopicRecords } from '../support/kcat.js';
import type { RelayTestContext } from '../support/relayFixture.js';
import { startRelayPatiently, type ClusterUnderTest } from './kafkaClusterFixture.js';
import { COLLECTIONS, CHANGES, relayEnvFor, sleep } from './scenario.js';

export const CLUSTER_SCENARIOS = [
  'rolling-restart',
  'leader-kill',
  'preferred-election',
  'broker-cut',
] as const;
export type ClusterScenario = (typeof CLUSTER_SCENARIOS)[number];

export interface ClusterMode {
  name: string;
  description: string;
  env: Record<string, string>;
  /** RELAY_DELIVERY=exactly-once: a read_committed reader must see no duplicate at all. */
  exactlyOnce?: boolean;
}

/** The default checkpoint mode (whatever it is), batched, and exactly-once delivery. */
export const CLUSTER_MODES: ClusterMode[] = [
  { name: 'default', description: 'default checkpoint mode', env: {} },
  {
    name: 'batched',
    description: 'RELAY_CHECKPOINT_MODE=batched',
    env: { RELAY_CHECKPOINT_MODE: 'batched' },
  },
  {
    name: 'exactly-once',
    description: 'RELAY_DELIVERY=exactly-once',
    env: { RELAY_DELIVERY: 'exactly-once' },
    exactlyOnce: true,
  },
];

/**
 * Each writer writes throughout the fault and then AFTER_FAULT more changes (the recovery is under load
 * too), MIN_CHANGES at least, MAX_CHANGES at most (a fault that outlasts them continues without writes).
 * Counted per writer; the time is the fault's, not the count's.
 */
const MIN_CHANGES = Math.max(1000, Math.round(CHANGES / 3));
const AFTER_FAULT = 600;
const MAX_CHANGES = 10 * MIN_CHANGES;

/** One mode's side of a scenario: its own database, topics, relay and writer. */
interface ModeRun {
  mode: ClusterMode;
  name: string;
  ctx: RelayTestContext;
  relay: RelayProcess | null;
  topics: string[];
  workload: Workload | null;
}

/**
 * Runs `scenario` for every mode at once: one relay per mode (each with its own database and topics)
 * publishes while its writer writes, and the one fault lands on all of them. Broker restarts dominate
 * a scenario's time, so sharing them keeps the suite's cost that of one mode.
 */
export async function runClusterScenario(
  c: ClusterUnderTest,
  scenario: ClusterScenario,
  modes: readonly ClusterMode[],
  random: () => number,
  seed: number,
): Promise<void> {
  const t0 = Date.now();
  const step = (what: string): void =>
    console.log(`      [kafka-cluster-${scenario}] ${what} (${Math.round((Date.now() - t0) / 1000)} s)`);
  const runs: ModeRun[] = [];
  try {
    for (const mode of modes) {
      const ctx = await relayTestContext(`kc-${scenario.slice(0, 8)}-${mode.name.slice(0, 3)}`);
      runs.push({
        mode,
        name: `kafka-cluster-${scenario}-${mode.name}`,
        ctx,
        relay: null,
        topics: COLLECTIONS.map((coll) => ctx.topic(coll)),
        workload: null,
      });
    }
    await Promise.all(
      runs.map(async (run) => {
        run.relay = await startRelayPatiently(
          relayEnvFor(run.ctx, {
            ...run.mode.env,
            KAFKA_BROKERS: c.brokers,
            KAFKA_RETRY_MAX_MS: '1000',
            // RF 3 from the brokers' default; fewer partitions than brokers would leave a broker idle.
            KAFKA_TOPIC_PARTITIONS: '6',
          }),
        );
      }),
    );
    const topics = runs.flatMap((run) => run.topics);
    step(`relays ready (${runs.map((r) => r.mode.name).join(', ')})`);
    await c.waitFullyReplicated(topics);
    step('topics fully replicated');
    if (scenario === 'preferred-election') await rotatePreferredReplicas(c, topics);

    let faultDone = false;
    const stopAt = new Map<ModeRun, number>();
    for (const run of runs) {
      const workload: Workload = new Workload(run.ctx.mongo, {
        db: run.ctx.db,
        collections: COLLECTIONS,
        documents: 60,
        changes: MAX_CHANGES,
        pauseMs: 5,
        seed: Math.floor(random() * 2 ** 31),
        stop: () => faultDone && workload.log.length >= (stopAt.get(run) ?? MAX_CHANGES),
      });
      run.workload = workload;
    }
    const writing = Promise.all(runs.map((run) => run.workload!.run()));
    const extra = await injectFault(c, scenario, topics, random, () =>
      Math.min(...runs.map((run) => run.workload!.log.length)),
    );
    for (const run of runs) {
      stopAt.set(run, Math.max(MIN_CHANGES, run.workload!.log.length + AFTER_FAULT));
    }
    faultDone = true;
    step(`fault done: ${JSON.stringify(extra)}`);
    const written = await writing;
    step('writers done');
    // Judge every mode before failing, so each prints its line.
    const outcomes = await Promise.allSettled(
      runs.map(async (run, i) => {
        const relay = run.relay!;
        const report = await readBackAndJudge(run.name, run.ctx, c, relay, run.topics, written[i]!, {
          ...extra,
          relay_exits: relay.child.exitCode === null ? 0 : 1,
          seconds: Math.round((Date.now() - t0) / 1000),
          seed,
        });
        expect(relay.child.exitCode, `${run.name}: the relay kept running`).to.equal(null);
        if (run.mode.exactlyOnce) {
          expect(report.duplicates, `${run.name}: duplicates seen by a read_committed reader`).to.equal(0);
          await expectOnceByKcat(run.name, c.direct, run.topics, written[i]!);
        } else if (scenario === 'rolling-restart' || scenario === 'preferred-election') {
          expect(report.duplicates, `${run.name}: duplicates after graceful leader changes`).to.equal(0);
        }
      }),
    );
    const failures = outcomes.flatMap((o, i) =>
      o.status === 'rejected' ? [`${runs[i]!.name}: ${(o.reason as Error).message}`] : [],
    );
    if (failures.length > 0) throw new Error(failures.join('\n'));
  } catch (error) {
    step(`FAILED: ${(error as Error).message}`);
    for (const run of runs) {
      console.log(
        `        ${run.name} relay log tail:\n        ${(run.relay?.stdout.slice(-10) ?? []).join('\n        ')}`,
      );
    }
    throw error;
  } finally {
    await killAllRelays();
    for (const gate of c.gates.values()) {
      gate.restore();
      gate.release();
    }
    for (const node of c.cluster.nodes) if (!node.running) await node.start();
    for (const run of runs) await run.ctx.close();
    step('cleaned up');
  }
}

/** Lands the scenario's fault once some changes are written; returns numbers for the summary line. */
async function injectFault(
  c: ClusterUnderTest,
  scenario: ClusterScenario,
  topics: string[],
  random: () => number,
  written: () => number,
): Promise<Record<string, number>> {
  const midStream = async (): Promise<void> => {
    const target = 100 + Math.floor(random() * 300);
    while (written() < target) await sleep(50);
  };
  await midStream();
  switch (scenario) {
    case 'rolling-restart': {
      for (const node of c.cluster.nodes) {
        await node.stop(); // SIGTERM: controlled shutdown moves its leaderships first
        await sleep(500 + random() * 1500);
        await node.start();
        await c.waitFullyReplicated(topics);
      }
      return { restarts: c.cluster.nodes.length };
    }
    case 'leader-kill': {
      const busiest = await busiestPartition(c, topics);
      const leader = await c.leaderOf(busiest.topic, busiest.partition);
      await c.cluster.node(leader).kill();
      await sleep(1000 + random() * 3000);
      await c.cluster.node(leader).start();
      await c.waitFullyReplicated(topics);
      return { killed_node: leader, busiest_partition: busiest.partition };
    }
    case 'preferred-election': {
      const lines = await c.electPreferredLeaders(topics);
      const elected = lines.filter((l) => l.endsWith(' elected')).length;
      expect(elected, `preferred leaders elected (${lines.join('; ')})`).to.be.greaterThan(0);
      await sleep(1000 + random() * 2000);
      return { elections: elected };
    }
    case 'broker-cut': {
      const nodeId = 1 + Math.floor(random() * c.cluster.nodes.length);
      const gate = c.gates.get(nodeId)!;
      gate.cut();
      const cutMs = 3000 + Math.floor(random() * 4000);
      await sleep(cutMs);
      gate.restore();
      return { cut_node: nodeId, cut_ms: cutMs };
    }
  }
}

/** The partition with the most records so far, among the scenario's topics. */
async function busiestPartition(
  c: ClusterUnderTest,
  topics: string[],
): Promise<{ topic: string; partition: number }> {
  let best = { topic: topics[0]!, partition: 0, offset: -1 };
  for (const topic of topics) {
    for (const p of await c.admin.fetchTopicOffsets(topic)) {
      const offset = Number(p.high);
      if (offset > best.offset) best = { topic, partition: p.partition, offset };
    }
  }
  return best;
}

/**
 * Makes another replica the preferred one (first in the list) of every partition, without moving any
 * leader yet: the election mid-stream then moves every leadership.
 */
async function rotatePreferredReplicas(c: ClusterUnderTest, topics: string[]): Promise<void> {
  const metadata = await c.admin.fetchTopicMetadata({ topics });
  await c.admin.alterPartitionReassignments({
    topics: metadata.topics.map((t) => ({
      topic: t.name,
      partitionAssignment: t.partitions.map((p) => ({
        partition: p.partitionId,
        replicas: [...p.replicas.filter((r) => r !== p.leader), p.leader],
      })),
    })),
  });
  for (let i = 0; i < 120; i++) {
    const { topics: pending } = await c.admin.listPartitionReassignments({});
    if (pending.length === 0) return;
    await sleep(500);
  }
  throw new Error('the replica reordering did not complete in 60 s');
}

/** Catch-up bounds of the read-back (see readBackAndJudge). */
const NO_PROGRESS_MS = 120_000;
const CATCH_UP_MAX_MS = 300_000;

interface Progress {
  /** Records the independent reader holds. */
  read: number;
  /** Records in Kafka: the sum of the topics' high watermarks (no transactions, so no control records). */
  inKafka: number;
  /** Changes the relay counted as acknowledged by Kafka (events_total, across its whole life). */
  published: number;
  /** Changes the relay read and Kafka has not acknowledged yet. */
  inFlight: number;
}

/**
 * Reads every topic back and judges it against the writer's log. It waits for the whole pipeline to
 * catch up, not for a fixed time: as long as the relay still has changes in flight or publishes more,
 * Kafka holds more, or the reader reads more, something is moving; it stops waiting once nothing moved
 * for NO_PROGRESS_MS, or after CATCH_UP_MAX_MS in all. A loss then says where the changes are: in Kafka
 * but not read (the reader), counted as published but not in Kafka (the sink), or never published
 * (the relay stalled).
 */
async function readBackAndJudge(
  name: string,
  ctx: RelayTestContext,
  c: ClusterUnderTest,
  relay: RelayProcess,
  topics: string[],
  log: readonly WrittenChange[],
  extra: Record<string, number>,
): Promise<DeliveryReport> {
  const kafka = kafkaClient(`faults-${name}`, c.direct);
  const collectors = await Promise.all(topics.map((topic) => collectTopic(topic, { kafka })));
  const records = (): CollectedMessage[] => collectors.flatMap((col) => col.messages);
  const started = Date.now();
  try {
    let report = verifyDelivery(log, records());
    let last: Progress | null = null;
    let lastMove = Date.now();
    while (report.lost > 0) {
      const now = Date.now();
      if (now - lastMove > NO_PROGRESS_MS || now - started > CATCH_UP_MAX_MS) break;
      await sleep(1000);
      report = verifyDelivery(log, records());
      const p = await progressOf(c, relay, topics, records().length);
      if (!last || JSON.stringify(p) !== JSON.stringify(last)) lastMove = Date.now();
      last = p;
    }
    const waited = Math.round((Date.now() - started) / 1000);
    const p = await progressOf(c, relay, topics, records().length);
    // kafka_records: the brokers' own count (high watermarks), independent of the reader.
    console.log(
      `      ${formatReport(name, report, { ...extra, kafka_records: p.inKafka, read_back_s: waited })}`,
    );
    if (report.lost > 0) {
      console.log(
        `      [${name}] still missing after ${waited} s (${whereMissing(p, log.length)}): ` +
          `written=${log.length} ${JSON.stringify(p)}; ` +
          `behind partitions (read/in Kafka): ${(await behindPartitions(c, topics, records())).join(' ') || 'none'}` +
          `\n        relay log tail:\n        ${relay.stdout.slice(-10).join('\n        ')}`,
      );
    }
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.orderViolations, 'per-document order violations').to.equal(0);
    expect(report.conflictingDuplicates, 'duplicates that are not re-publications of one change').to.equal(0);
    expect(report.unexpected, 'records that match no written change').to.equal(0);
    return report;
  } finally {
    await Promise.all(collectors.map((col) => col.stop()));
  }
}

/**
 * Where missing changes are. The relay never re-sends a record once the sink counted it acknowledged,
 * so a record acknowledged but not written stays missing for good: that is the sink's fault.
 */
function whereMissing(p: Progress, written: number): string {
  if (p.read < p.inKafka) return 'the reader is behind what Kafka holds';
  if (p.inFlight > 0 || p.published < written) return 'the relay has not published them: stalled or slow';
  if (p.published > p.inKafka)
    return 'the relay counted more acknowledged than Kafka holds: false acknowledgements';
  return 'Kafka holds everything the relay published, yet changes are missing: check the writer log';
}

async function progressOf(
  c: ClusterUnderTest,
  relay: RelayProcess,
  topics: string[],
  read: number,
): Promise<Progress> {
  const metrics = parseMetrics(await relay.metrics().catch(() => ''));
  let inKafka = 0;
  for (const topic of topics) {
    const offsets = await c.admin.fetchTopicOffsets(topic).catch(() => []);
    for (const o of offsets) inKafka += Number(o.high);
  }
  return {
    read,
    inKafka,
    published: sumMetric(metrics, MetricName.eventsTotal),
    inFlight: sumMetric(metrics, MetricName.inFlightEvents),
  };
}

/** Partitions whose reader is behind Kafka's high watermark: `topic/partition:read/high`. */
async function behindPartitions(
  c: ClusterUnderTest,
  topics: string[],
  read: readonly CollectedMessage[],
): Promise<string[]> {
  const out: string[] = [];
  for (const topic of topics) {
    for (const o of await c.admin.fetchTopicOffsets(topic).catch(() => [])) {
      const got = read.filter((m) => m.topic === topic && m.partition === o.partition).length;
      if (got < Number(o.high)) out.push(`${topic}/${o.partition}:${got}/${o.high}`);
    }
  }
  return out;
}

/** Exactly-once: the same judgement from kcat (librdkafka) with isolation.level=read_committed. */
async function expectOnceByKcat(
  name: string,
  brokers: string,
  topics: readonly string[],
  log: readonly WrittenChange[],
): Promise<void> {
  const records = (
    await Promise.all(topics.map((topic) => readTopicRecords(brokers, topic, READ_COMMITTED)))
  ).flat();
  const report = verifyDelivery(log, records);
  console.log(`      ${formatReport(`${name}-kcat`, report)}`);
  expect(report.lost, `${name} (kcat): lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
  expect(report.duplicates, `${name} (kcat): duplicates`).to.equal(0);
  expect(report.orderViolations, `${name} (kcat): order violations`).to.equal(0);
}
