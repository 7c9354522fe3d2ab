/**
 * The Kafka broker and MongoDB that integration/process tests run against.
 *
 * - KAFKA_BROKERS / MONGODB_URI already set (e.g. `set -a; . .services/env`): used as they are.
 * - Otherwise the root hook starts what is missing (not detached: it dies with the test run)
 *   under .services/test-<pid>/ and exports the variables so child processes inherit them.
 * - startDedicatedKafka(): a separate broker for tests that stop/restart Kafka, so they never
 *   disturb the shared one.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  kafkaRoundTrip,
  startKafka,
  stopKafkaByPidFile,
  type KafkaService,
} from '../../scripts/services/kafka.js';
import {
  startMongo,
  stopMongoByStateDir,
  type MongoCapabilities,
  type MongoKind,
  type MongoService,
} from '../../scripts/services/mongo.js';
import { SERVICES_DIR, isAlive, redactUri } from '../../scripts/services/state.js';
import {
  startKafkaCluster,
  type KafkaCluster,
  type KafkaClusterOptions,
} from '../../scripts/services/kafkaCluster.js';

export type { MongoCapabilities, MongoKind, MongoService, KafkaService };

export interface TestServices {
  brokers: string;
  mongoUri: string;
  mongoKind: MongoKind;
  capabilities: MongoCapabilities;
  /** Set only when this run started the broker. */
  kafka?: KafkaService;
  /** Set when this run started MongoDB, or when startMongo wrapped MONGODB_URI (kind 'env'). */
  mongo?: MongoService;
}

let current: TestServices | undefined;
let runDir: string | undefined;
let dedicatedCount = 0;
const dedicated = new Set<{ stop(): Promise<void> }>();

export function getServices(): TestServices {
  if (!current) {
    throw new Error(
      'test services are not started: the root hook starts them only when an integration/process test ' +
        'file is in the run (or with RELAY_TEST_SERVICES=always)',
    );
  }
  return current;
}

function testRunDir(): string {
  runDir ??= path.join(SERVICES_DIR, `test-${process.pid}`);
  return runDir;
}

/**
 * A killed test run (SIGKILL, OOM) cannot stop its servers; the next run does it, through the
 * pid files left in .services/test-<deadpid>/, then removes the directory.
 */
async function reapStaleRuns(): Promise<void> {
  if (!existsSync(SERVICES_DIR)) return;
  for (const name of await readdir(SERVICES_DIR)) {
    const pid = Number(/^test-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    const dir = path.join(SERVICES_DIR, name);
    for (const sub of await readdir(dir)) {
      if (sub.startsWith('kafka')) await stopKafkaByPidFile(path.join(dir, sub));
      if (sub.startsWith('mongo')) await stopMongoByStateDir(path.join(dir, sub));
    }
    await rm(dir, { recursive: true, force: true });
  }
}

async function useOrStartKafka(log: (l: string) => void): Promise<{ brokers: string; kafka?: KafkaService }> {
  const fromEnv = process.env.KAFKA_BROKERS;
  if (fromEnv) {
    // Fail fast with a clear message instead of every test timing out on a stale variable.
    const first = fromEnv.split(',')[0]!.trim();
    if (!(await kafkaRoundTrip(first, 5_000))) throw new Error(`KAFKA_BROKERS=${fromEnv} does not answer`);
    return { brokers: fromEnv };
  }
  const kafka = await startKafka({ dataDir: path.join(testRunDir(), 'kafka'), log });
  return { brokers: kafka.brokers, kafka };
}

/** Called by the root hook; starts Kafka and MongoDB in parallel. */
export async function setUpServices(log: (l: string) => void): Promise<TestServices> {
  if (current) return current;
  await reapStaleRuns();
  // startMongo is expected to wrap MONGODB_URI (kind 'env', nothing started) when it is set.
  const [k, mongo] = await Promise.all([
    useOrStartKafka(log),
    startMongo({ stateDir: path.join(testRunDir(), 'mongo'), log }),
  ]).catch(async (err: unknown) => {
    await tearDownServices(true);
    throw err;
  });
  current = {
    brokers: k.brokers,
    mongoUri: mongo.uri,
    mongoKind: mongo.kind,
    capabilities: mongo.capabilities,
    mongo,
  };
  if (k.kafka) current.kafka = k.kafka;
  process.env.KAFKA_BROKERS = current.brokers;
  process.env.MONGODB_URI = current.mongoUri;
  const kafkaLine = k.kafka
    ? `kafka ${k.kafka.version} at ${k.brokers} (started)`
    : `kafka at ${k.brokers} (KAFKA_BROKERS)`;
  log(`${kafkaLine}; mongodb: ${mongo.kind} at ${redactUri(mongo.uri)} (${mongo.description})`);
  return current;
}

/**
 * Stops everything this run started (shared and dedicated brokers, MongoDB). The run directory
 * is removed unless `keepFiles` (a test failed: broker logs are worth reading) or
 * RELAY_KEEP_TEST_SERVICES is set.
 */
export async function tearDownServices(keepFiles: boolean): Promise<string | undefined> {
  const started = current;
  current = undefined;
  await Promise.all([...dedicated].map((k) => k.stop()));
  dedicated.clear();
  await Promise.all([started?.kafka?.stop(), started?.mongo?.stop()]);
  if (!runDir) return undefined;
  if (keepFiles || process.env.RELAY_KEEP_TEST_SERVICES) return runDir;
  await rm(runDir, { recursive: true, force: true });
  return undefined;
}

/**
 * A broker of its own for tests that stop/start Kafka (outages, restarts). Call `stop()` in an
 * `after` hook; the root hook stops any that are still running at the end of the run anyway.
 */
export async function startDedicatedKafka(log: (l: string) => void = () => {}): Promise<KafkaService> {
  dedicatedCount += 1;
  const kafka = await startKafka({
    dataDir: path.join(testRunDir(), `kafka-dedicated-${dedicatedCount}`),
    log,
  });
  dedicated.add(kafka);
  return kafka;
}

/**
 * A Kafka cluster of its own (KRaft nodes, replication factor 3 and min.insync.replicas 2 for three
 * nodes) for tests that move leaders, stop, kill or cut brokers. Stopped by the root hook at the end.
 */
export async function startDedicatedKafkaCluster(
  opts: Omit<KafkaClusterOptions, 'dataDir' | 'detached'>,
): Promise<KafkaCluster> {
  dedicatedCount += 1;
  const cluster = await startKafkaCluster({
    ...opts,
    dataDir: path.join(testRunDir(), `kafka-cluster-${dedicatedCount}`),
  });
  dedicated.add(cluster);
  return cluster;
}
