/**
 * `npm run services:up | services:down | services:status`
 *
 * up:     starts Kafka and MongoDB detached (they outlive this command), records their pids in
 *         .services/state.json and writes .services/env. Idempotent: if what state.json records
 *         is alive and answers a round trip, nothing new is started.
 * down:   stops exactly what state.json / the pid files record (never by process name) and
 *         removes .services/env. `down --wipe` also deletes the data directories.
 * status: prints what is recorded and whether it answers.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { kafkaRoundTrip, startKafka, stopKafkaByPidFile, type KafkaService } from './kafka.js';
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
const MONGO_DIR = path.join(SERVICES_DIR, 'mongo');
const rel = (p: string): string => path.relative(REPO_ROOT, p);
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
  if (!isOurProcess(kafka.pid, ['kafka.Kafka', kafka.dataDir])) return false;
  const [k, m] = await Promise.all([kafkaRoundTrip(kafka.brokers), mongoPing(mongo.uri)]);
  return k && m;
}

async function writeEnv(state: ServicesState): Promise<void> {
  if (!state.kafka || !state.mongo) return;
  await writeEnvFile({ KAFKA_BROKERS: state.kafka.brokers, MONGODB_URI: state.mongo.uri }, [
    `kafka ${state.kafka.version} (pid ${state.kafka.pid}, data ${rel(state.kafka.dataDir)})`,
    `mongodb: ${state.mongo.kind} (${state.mongo.description})`,
  ]);
}

function describe(state: ServicesState): void {
  if (state.kafka) say(`kafka ${state.kafka.version} at ${state.kafka.brokers} (pid ${state.kafka.pid})`);
  if (state.mongo)
    say(`mongodb: ${state.mongo.kind} at ${redactUri(state.mongo.uri)} (${state.mongo.description})`);
}

async function up(): Promise<void> {
  const t0 = Date.now();
  const previous = await readState();
  if (previous && (await healthy(previous))) {
    await writeEnv(previous);
    say('services already up:');
    describe(previous);
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
  const [k, m] = await Promise.allSettled([
    timed(() => startKafka({ dataDir: KAFKA_DIR, detached: true, log })),
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
    kafka: { dataDir: kafka.dataDir, pid: kafka.pid, brokers: kafka.brokers, version: kafka.version },
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
    stopKafkaByPidFile(state?.kafka?.dataDir ?? KAFKA_DIR),
    stopMongoByStateDir(state?.mongo?.stateDir ?? MONGO_DIR),
  ]);
  await removeServicesFiles();
  if (wipe) {
    await rm(KAFKA_DIR, { recursive: true, force: true });
    await rm(MONGO_DIR, { recursive: true, force: true });
  }
  say(
    `services down${state ? '' : ' (nothing was recorded as up)'}${wipe ? ', data wiped' : ''} in ${secs(Date.now() - t0)}`,
  );
}

async function status(): Promise<void> {
  const state = await readState();
  if (!state) return say('services: not up (no .services/state.json)');
  describe(state);
  say((await healthy(state)) ? 'healthy' : 'NOT healthy: run `npm run services:down` then `services:up`');
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down(rest.includes('--wipe'));
  else if (cmd === 'status') await status();
  else throw new PrerequisiteError('usage: tsx scripts/services/cli.ts up | down [--wipe] | status');
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
