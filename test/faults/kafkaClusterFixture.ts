/**
 * A three-node Kafka cluster for the fault suite, as production runs it (KRaft quorum of three,
 * replication factor 3, min.insync.replicas 2), with a gate (test/support/kafkaGate.ts) in front of
 * every node's client listener: the relay reaches the brokers only through the gates, so a test can cut
 * one broker off from the relay or hold its produce requests. Readers and admin calls use the brokers'
 * internal listeners, which no gate touches. Random choices come from a printed, replayable seed.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { ensureKafkaJars } from '../../scripts/services/kafka.js';
import type { KafkaCluster } from '../../scripts/services/kafkaCluster.js';
import { REPO_ROOT } from '../../scripts/services/state.js';
import { startKafkaGate, type KafkaGate } from '../support/kafkaGate.js';
import { startRelay, type RelayProcess } from '../support/relayProcess.js';
import { startDedicatedKafkaCluster } from '../support/services.js';
import { waitFor } from '../support/wait.js';

const execFileP = promisify(execFile);

export interface ClusterUnderTest {
  cluster: KafkaCluster;
  /** node id -> the gate in front of its client listener. */
  gates: Map<number, KafkaGate>;
  /** KAFKA_BROKERS for the relay: through the gates. */
  brokers: string;
  /** The internal listeners, for independent readers and admin calls. */
  direct: string;
  admin: Admin;
  leaderOf(topic: string, partition: number): Promise<number>;
  /** Until every partition of `topics` has all its replicas in sync (after a broker came back). */
  waitFullyReplicated(topics: readonly string[], timeoutMs?: number): Promise<void>;
  /** ElectLeaders(PREFERRED) for every partition of `topics`; returns the tool's lines. */
  electPreferredLeaders(topics: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}

export async function startClusterUnderTest(log: (line: string) => void): Promise<ClusterUnderTest> {
  const gates = new Map<number, KafkaGate>();
  const cluster = await startDedicatedKafkaCluster({
    nodes: 3,
    log,
    advertise: async ({ nodeId, port }) => {
      const gate = await startKafkaGate(port);
      gates.set(nodeId, gate);
      return gate.port;
    },
  });
  const direct = cluster.internalBrokers;
  const admin = new Kafka({
    clientId: 'faults-admin',
    brokers: direct.split(','),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();

  const partitionsOf = async (topics: readonly string[]) =>
    (await admin.fetchTopicMetadata({ topics: [...topics] })).topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, ...p })),
    );

  return {
    cluster,
    gates,
    brokers: cluster.brokers,
    direct,
    admin,
    leaderOf: async (topic, partition) => {
      const partitions = await partitionsOf([topic]);
      return partitions.find((p) => p.partitionId === partition)?.leader ?? -1;
    },
    waitFullyReplicated: async (topics, timeoutMs = 120_000) => {
      await waitFor(
        async () => {
          const partitions = await partitionsOf(topics).catch(() => null);
          return (
            partitions !== null &&
            partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length)
          );
        },
        { timeoutMs, intervalMs: 500, message: `every replica of ${topics.join(', ')} to be in sync` },
      );
    },
    electPreferredLeaders: async (topics) => {
      const libs = await ensureKafkaJars();
      const { stdout } = await execFileP(
        process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java',
        [
          '-cp',
          `${libs}/*`,
          `-Dlog4j2.configurationFile=${path.join(REPO_ROOT, 'scripts/kafka/log4j2.yaml')}`,
          path.join(REPO_ROOT, 'scripts/kafka/ElectPreferredLeaders.java'),
          direct,
          ...topics,
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      return stdout.split('\n').filter((l) => /-\d+ (elected|ELECTION_NOT_NEEDED)/.test(l));
    },
    close: async () => {
      await admin.disconnect().catch(() => undefined);
      await cluster.stop();
      await Promise.all([...gates.values()].map((g) => g.close()));
    },
  };
}

/**
 * startRelayReady with more patience: against several brokers on a busy machine, creating topics and
 * waiting for their first leaders can take longer than the shared helper's minute.
 */
export async function startRelayPatiently(
  env: Record<string, string | undefined>,
  timeoutMs = 240_000,
): Promise<RelayProcess> {
  const relay = await startRelay(env);
  await relay.waitForLog((l) => l.msg === 'change stream open', timeoutMs, 'the change stream to open');
  await waitFor(
    async () =>
      (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`).catch(() => null))?.status === 200,
    { timeoutMs, message: 'the relay to report ready' },
  );
  return relay;
}
