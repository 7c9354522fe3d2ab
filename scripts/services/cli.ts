/**
 * `npm run services:up | services:down | services:status`, and `npm run services -- kafka <action> <node>`
 *
 * up:     starts Kafka and MongoDB detached (they outlive this command), records their pids in
 *         .services/state.json and writes .services/env. Idempotent: if what state.json records
 *         is alive and answers a round trip, nothing new is started. KAFKA_BROKER_COUNT=3 starts a
 *         three-node KRaft cluster instead of one broker (replication factor 3, min.insync.replicas 2).
 * down:   stops exactly what state.json / the pid files record (never by process name) and
 *         removes .services/env. `down --wipe` also deletes the data directories.
 * status: prints what is recorded and whether it answers.
 * kafka stop|kill|start|restart <node>: one node of the cluster (controlled shutdown, SIGKILL, start
 *         again on the same ports and data, stop then start).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { kafkaRoundTrip, startKafka, stopKafkaByPidFile, type KafkaService } from './kafka.js';
import { clusterNodePids, openKafkaClusterNode, startKafkaCluster } from './kafkaCluster.js';
import { startMongo, stopMongoByStateDir, type MongoService } from './mongo.js';
import {
  ENV_FILE,
  PrerequisiteError,
  REPO_ROOT,
  SERVICES_DIR,
  isOurProcess,
  readState,
  redactUri,
  removeServicesFiles,
  writeEnvFile,
  writeState,
  type ServicesState,
} from './state.js';

const KAFKA_DIR = path.join(SERVICES_DIR, 'kafka');
const KAFKA_CLUSTER_DIR = path.join(SERVICES_DIR, 'kafka-cluster');
const MONGO_DIR = path.join(SERVICES_DIR, 'mongo');
/** Paths inside the repository relative to it; a RELAY_SERVICES_DIR elsewhere stays absolute. */
const rel = (p: string): string => {
  const r = path.relative(REPO_ROOT, p);
  return r.startsWith('..') ? p : r;
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const say = (line: string): void => console.log(line);

async function mongoPing(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 3_000, connectTimeoutMS: 3_000 });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

/** Both recorded services are our live processes and answer a real request. */
async function healthy(state: ServicesState): Promise<boolean> {
  const { kafka, mongo } = state;
  if (!kafka || !mongo) return false;
  if (kafka.nodes !== undefined) {
    const nodes = await clusterNodePids(kafka.dataDir);
    if (nodes.length !== kafka.nodes || nodes.some((n) => n.pid === 0)) return false;
  } else if (!isOurProcess(kafka.pid, ['kafka.Kafka', kafka.dataDir])) return false;
  const [k, m] = await Promise.all([kafkaRoundTrip(kafka.brokers), mongoPing(mongo.uri)]);
  return k && m;
}

async function writeEnv(state: ServicesState): Promise<void> {
  if (!state.kafka || !state.mongo) return;
  const nodes = state.kafka.nodes;
  await writeEnvFile({ KAFKA_BROKERS: state.kafka.brokers, MONGODB_URI: state.mongo.uri }, [
    nodes
      ? `kafka ${state.kafka.version}: ${nodes} nodes (data ${rel(state.kafka.dataDir)}; npm run services -- kafka stop|kill|start|restart <node>)`
      : `kafka ${state.kafka.version} (pid ${state.kafka.pid}, data ${rel(state.kafka.dataDir)})`,
    `mongodb: ${state.mongo.kind} (${state.mongo.description})`,
  ]);
}

async function describe(state: ServicesState): Promise<void> {
  const kafka = state.kafka;
  if (kafka?.nodes !== undefined) {
    const nodes = await clusterNodePids(kafka.dataDir);
    say(`kafka ${kafka.version}: ${nodes.length} nodes at ${kafka.brokers}`);
    for (const n of nodes)
      say(`  node ${n.nodeId}: 127.0.0.1:${n.port} ${n.pid ? `(pid ${n.pid})` : '(not running)'}`);
  } else if (kafka) say(`kafka ${kafka.version} at ${kafka.brokers} (pid ${kafka.pid})`);
  if (state.mongo)
    say(`mongodb: ${state.mongo.kind} at ${redactUri(state.mongo.uri)} (${state.mongo.description})`);
}

async function up(): Promise<void> {
  const t0 = Date.now();
  const previous = await readState();
  if (previous && (await healthy(previous))) {
    await writeEnv(previous);
    say('services already up:');
    await describe(previous);
    say(`env: ${rel(ENV_FILE)} (checked in ${secs(Date.now() - t0)})`);
    return;
  }
  if (previous) {
    say('recorded services are not healthy: stopping what is left of them first');
    await down(false);
  }

  const log = (l: string): void => say(`  ${l}`);
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const s = Date.now();
    return [await fn(), Date.now() - s];
  };
  // Start both at once; if one fails, stop the other so nothing is left half-up.
  const brokerCount = kafkaBrokerCount();
  const [k, m] = await Promise.allSettled([
    timed(() =>
      brokerCount === 1
        ? startKafka({ dataDir: KAFKA_DIR, detached: true, log })
        : startCluster(brokerCount, log),
    ),
    timed(() => startMongo({ stateDir: MONGO_DIR, detached: true, log })),
  ]);
  if (k.status === 'rejected' || m.status === 'rejected') {
    if (k.status === 'fulfilled') await k.value[0].stop();
    if (m.status === 'fulfilled') await m.value[0].stop();
    throw k.status === 'rejected' ? k.reason : (m as PromiseRejectedResult).reason;
  }
  const [kafka, kafkaMs]: [KafkaService, number] = k.value;
  const [mongo, mongoMs]: [MongoService, number] = m.value;
  const state: ServicesState = {
    startedAt: new Date().toISOString(),
    kafka: {
      dataDir: kafka.dataDir,
      pid: kafka.pid,
      brokers: kafka.brokers,
      version: kafka.version,
      ...(brokerCount > 1 ? { nodes: brokerCount } : {}),
    },
    mongo: {
      stateDir: MONGO_DIR,
      uri: mongo.uri,
      kind: mongo.kind,
      description: mongo.description,
      ...(mongo.pid ? { pid: mongo.pid } : {}),
    },
  };
  await writeState(state);
  await writeEnv(state);
  say(`kafka ${kafka.version} at ${kafka.brokers} (pid ${kafka.pid}, ready in ${secs(kafkaMs)})`);
  say(`mongodb: ${mongo.kind} at ${redactUri(mongo.uri)} (${mongo.description}; ready in ${secs(mongoMs)})`);
  say(`env: ${rel(ENV_FILE)}  (set -a; . ${rel(ENV_FILE)}; set +a)   total ${secs(Date.now() - t0)}`);
}

async function down(wipe: boolean): Promise<void> {
  const t0 = Date.now();
  const state = await readState();
  // The pid files in the data dirs are the record even if state.json is missing or partial.
  await Promise.all([
    stopKafkaByPidFile(KAFKA_DIR),
    stopKafkaByPidFile(KAFKA_CLUSTER_DIR),
    ...(state?.kafka?.dataDir ? [stopKafkaByPidFile(state.kafka.dataDir)] : []),
    stopMongoByStateDir(state?.mongo?.stateDir ?? MONGO_DIR),
  ]);
  await removeServicesFiles();
  if (wipe) {
    await rm(KAFKA_DIR, { recursive: true, force: true });
    await rm(KAFKA_CLUSTER_DIR, { recursive: true, force: true });
    await rm(MONGO_DIR, { recursive: true, force: true });
  }
  say(
    `services down${state ? '' : ' (nothing was recorded as up)'}${wipe ? ', data wiped' : ''} in ${secs(Date.now() - t0)}`,
  );
}

async function status(): Promise<void> {
  const state = await readState();
  if (!state) return say('services: not up (no .services/state.json)');
  await describe(state);
  say((await healthy(state)) ? 'healthy' : 'NOT healthy: run `npm run services:down` then `services:up`');
}

/** KAFKA_BROKER_COUNT: 1 (default) or a cluster of that many KRaft nodes. */
function kafkaBrokerCount(): number {
  const raw = process.env.KAFKA_BROKER_COUNT ?? '1';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 9) {
    throw new PrerequisiteError(`KAFKA_BROKER_COUNT=${raw}: must be a whole number from 1 to 9 (default 1)`);
  }
  return n;
}

/** A cluster presented as the single-broker service shape that `up` records (pid = node 1's). */
async function startCluster(nodes: number, log: (l: string) => void): Promise<KafkaService> {
  const cluster = await startKafkaCluster({ dataDir: KAFKA_CLUSTER_DIR, nodes, detached: true, log });
  const first = cluster.nodes[0]!;
  return {
    brokers: cluster.brokers,
    port: first.advertisedPort,
    pid: first.pid,
    dataDir: cluster.dataDir,
    version: cluster.version,
    stop: () => cluster.stop(),
    start: () => Promise.reject(new Error('start the cluster with services:up')),
  };
}

const KAFKA_ACTIONS = ['stop', 'kill', 'start', 'restart'] as const;

/** `kafka stop|kill|start|restart <node>`: one node of the cluster that services:up started. */
async function kafkaNode(action: string | undefined, nodeArg: string | undefined): Promise<void> {
  const usage = 'usage: npm run services -- kafka stop|kill|start|restart <node> (node: 1, 2, 3, ...)';
  if (!KAFKA_ACTIONS.includes(action as (typeof KAFKA_ACTIONS)[number]) || !/^\d+$/.test(nodeArg ?? '')) {
    throw new PrerequisiteError(usage);
  }
  const state = await readState();
  if (state?.kafka?.nodes === undefined) {
    throw new PrerequisiteError(
      'no kafka cluster is up: start one with KAFKA_BROKER_COUNT=3 npm run services:up',
    );
  }
  const t0 = Date.now();
  const node = await openKafkaClusterNode(state.kafka.dataDir, Number(nodeArg), (l) => say(`  ${l}`));
  if (action === 'stop' || action === 'restart') await node.stop();
  if (action === 'kill') await node.kill();
  if (action !== 'start' && action !== 'restart') {
    return say(
      `kafka node ${node.nodeId}: ${action === 'kill' ? 'killed (SIGKILL)' : 'stopped'} in ${secs(Date.now() - t0)}`,
    );
  }
  if (node.running) return say(`kafka node ${node.nodeId}: already running (pid ${node.pid})`);
  await node.start();
  say(`kafka node ${node.nodeId}: running again (pid ${node.pid}) in ${secs(Date.now() - t0)}`);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down(rest.includes('--wipe'));
  else if (cmd === 'status') await status();
  else if (cmd === 'kafka') await kafkaNode(rest[0], rest[1]);
  else {
    throw new PrerequisiteError(
      'usage: tsx scripts/services/cli.ts up | down [--wipe] | status | kafka stop|kill|start|restart <node>',
    );
  }
}

main().then(
  // Explicit exit: a leftover client socket must not keep this command hanging; the
  // servers were started detached and are not affected.
  () => process.exit(0),
  (err: unknown) => {
    console.error(
      err instanceof PrerequisiteError
        ? err.message
        : `services: ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  },
);
