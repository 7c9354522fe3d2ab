/**
 * The three-broker fault scenarios: a relay (a real process) publishes through the gates while the
 * workload writes throughout; one broker fault lands mid-stream; an independent consumer on the
 * brokers' internal listeners reads every topic back and compares it with the writer's log.
 */
import { expect } from 'chai';
import { killAllRelays } from '../support/relayProcess.js';
import { relayTestContext } from '../support/relayFixture.js';
import {
  Workload,
  awaitDelivery,
  formatReport,
  type DeliveryReport,
  type WrittenChange,
} from '../support/workload.js';
import { collectTopic, kafkaClient } from '../support/kafka.js';
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
}

/** The default checkpoint mode (whatever it is) and batched. */
export const CLUSTER_MODES: ClusterMode[] = [
  { name: 'default', description: 'default checkpoint mode', env: {} },
  {
    name: 'batched',
    description: 'RELAY_CHECKPOINT_MODE=batched',
    env: { RELAY_CHECKPOINT_MODE: 'batched' },
  },
];

/** Changes per scenario: a few thousand, written at a pace that spans the fault. */
const SCENARIO_CHANGES = Math.max(1000, Math.round(CHANGES * 0.8));

export async function runClusterScenario(
  c: ClusterUnderTest,
  scenario: ClusterScenario,
  mode: ClusterMode,
  random: () => number,
): Promise<void> {
  const name = `kafka-cluster-${scenario}-${mode.name}`;
  const ctx = await relayTestContext(`kc-${scenario.slice(0, 8)}-${mode.name.slice(0, 3)}`);
  const t0 = Date.now();
  const step = (what: string): void =>
    console.log(`      [${name}] ${what} (${Math.round((Date.now() - t0) / 1000)} s)`);
  let relayLogs: () => string[] = () => [];
  try {
    const env = relayEnvFor(ctx, {
      ...mode.env,
      KAFKA_BROKERS: c.brokers,
      KAFKA_RETRY_MAX_MS: '1000',
      // RF 3 from the brokers' default; fewer partitions than brokers would leave a broker idle.
      KAFKA_TOPIC_PARTITIONS: '6',
    });
    const relay = await startRelayPatiently(env);
    relayLogs = () => relay.stdout.slice(-15);
    const topics = COLLECTIONS.map((coll) => ctx.topic(coll));
    step('relay ready');
    await c.waitFullyReplicated(topics);
    step('topics fully replicated');
    if (scenario === 'preferred-election') await rotatePreferredReplicas(c, topics);

    let faultDone = false;
    const workload: Workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: COLLECTIONS,
      documents: 60,
      changes: 4 * SCENARIO_CHANGES,
      pauseMs: 5,
      seed: Math.floor(random() * 2 ** 31),
      stop: () => faultDone && workload.log.length >= SCENARIO_CHANGES,
    });
    const writing = workload.run();
    const extra = await injectFault(c, scenario, topics, random, () => workload.log.length);
    faultDone = true;
    step(`fault done: ${JSON.stringify(extra)}`);
    const written = await writing;
    const report = await readBackAndJudge(name, ctx, c.direct, written, {
      ...extra,
      relay_exits: relay.child.exitCode === null ? 0 : 1,
      seconds: Math.round((Date.now() - t0) / 1000),
    });
    expect(relay.child.exitCode, 'the relay kept running').to.equal(null);
    if (scenario === 'rolling-restart' || scenario === 'preferred-election') {
      expect(report.duplicates, 'duplicates after graceful leader changes').to.equal(0);
    }
  } catch (error) {
    step(
      `FAILED: ${(error as Error).message}\n        relay log tail:\n        ${relayLogs().join('\n        ')}`,
    );
    throw error;
  } finally {
    await killAllRelays();
    for (const gate of c.gates.values()) {
      gate.restore();
      gate.release();
    }
    for (const node of c.cluster.nodes) if (!node.running) await node.start();
    await ctx.close();
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

/**
 * Like scenario.ts' read-back, with a longer stall window: a broker that restarts slowly accepts
 * connections before it answers, so a client can wait a whole request timeout (30 s) on it, more than
 * once, before it moves on; a minute without a new record is not yet a loss on a busy machine.
 */
async function readBackAndJudge(
  name: string,
  ctx: RelayTestContext,
  brokers: string,
  log: readonly WrittenChange[],
  extra: Record<string, number>,
): Promise<DeliveryReport> {
  const kafka = kafkaClient(`faults-${name}`, brokers);
  const collectors = await Promise.all(COLLECTIONS.map((coll) => collectTopic(ctx.topic(coll), { kafka })));
  try {
    const report = await awaitDelivery(log, () => collectors.flatMap((col) => col.messages), {
      stallMs: 240_000,
    });
    console.log(`      ${formatReport(name, report, extra)}`);
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.orderViolations, 'per-document order violations').to.equal(0);
    expect(report.conflictingDuplicates, 'duplicates that are not re-publications of one change').to.equal(0);
    expect(report.unexpected, 'records that match no written change').to.equal(0);
    return report;
  } finally {
    await Promise.all(collectors.map((col) => col.stop()));
  }
}
