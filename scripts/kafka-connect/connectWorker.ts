/**
 * A Kafka Connect worker in standalone mode running Debezium's MongoDB connector, from Maven Central jars
 * (scripts/kafka-connect/pom.xml): the bench's side-by-side anchor runs and the Debezium compatibility
 * test (test/integration/relay/debezium-compat.test.ts). One worker per run: its offsets live in a file
 * of its own, so a stop and a start resume where it stopped, exactly as an operator's standalone worker
 * would.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../services/kafka.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

const execFileP = promisify(execFile);

/** Keep equal to the POM's properties; the POM says why Connect is not at the broker's version. */
export const CONNECT_VERSION = '4.3.1';
export const DEBEZIUM_VERSION = '3.6.1.Final';
const POM = path.join(REPO_ROOT, 'scripts/kafka-connect/pom.xml');
const LOG4J = path.join(REPO_ROOT, 'scripts/kafka-connect/log4j2.properties');
/** connect-standalone.sh's default heap (KAFKA_HEAP_OPTS), so the worker is sized as its users run it. */
const HEAP = ['-Xms256M', '-Xmx2G'];

function libsDir(): string {
  return path.join(REPO_ROOT, `.cache/kafka-connect-${CONNECT_VERSION}-debezium-${DEBEZIUM_VERSION}/libs`);
}

/**
 * Copies the worker's jars into .cache once: into a temp dir first, renamed to libs/ only when Maven
 * finished, so an interrupted download never leaves half a classpath. Offline first (-o): jars already in
 * ~/.m2 need no network.
 */
export async function ensureConnectJars(log: (line: string) => void): Promise<string> {
  const libs = libsDir();
  if (existsSync(libs)) return libs;
  const partial = `${libs}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  const args = (offline: boolean): string[] => [
    ...(offline ? ['-o'] : []),
    '-q',
    '-B',
    '-f',
    POM,
    `-Dlibs.dir=${partial}`,
    'dependency:copy-dependencies',
  ];
  const started = Date.now();
  try {
    await execFileP('mvn', args(true), { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch {
    log(`kafka connect ${CONNECT_VERSION} + debezium ${DEBEZIUM_VERSION}: downloading from Maven Central`);
    try {
      await execFileP('mvn', args(false), { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(
        `mvn could not fetch the Connect/Debezium jars:\n${e.stdout ?? ''}${e.stderr ?? e.message}`,
      );
    }
  }
  await rename(partial, libs);
  log(
    `kafka connect + debezium: ${(await readdir(libs)).length} jars in ${path.relative(REPO_ROOT, libs)} (${Date.now() - started} ms)`,
  );
  return libs;
}

export interface DebeziumSettings {
  brokers: string;
  mongoUri: string;
  /** db.coll */
  collection: string;
  topicPrefix: string;
  /** Worker state (offsets file, properties, plugin path). Reuse it to resume. */
  dir: string;
}

export interface ConnectWorker {
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() at spawn. */
  readonly spawnedAt: number;
  readonly exited: Promise<number>;
  tail(): string;
  /** SIGTERM (the worker flushes its offsets on a graceful stop), SIGKILL after 30 s. */
  stop(): Promise<number>;
}

/**
 * The connector as its documentation's quick start configures it, plus what a fair comparison needs:
 * `snapshot.mode=no_data` (the relay's runs start from a resume token too, without copying), JSON without
 * schemas (the relay writes none either; with schemas Debezium would write several times the bytes), and
 * a 1 s offset flush so a graceful stop finds little to flush. Every other setting is the default,
 * including `capture.mode=change_streams_update_full`, the counterpart of the relay's updateLookup.
 */
function properties(s: DebeziumSettings, restPort: number): { worker: string; connector: string } {
  const lines = (o: Record<string, string>): string =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n';
  return {
    worker: lines({
      'bootstrap.servers': s.brokers,
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': 'false',
      'value.converter.schemas.enable': 'false',
      'offset.storage.file.filename': path.join(s.dir, 'offsets.dat'),
      'offset.flush.interval.ms': '1000',
      'plugin.path': path.join(s.dir, 'plugins'),
      listeners: `http://127.0.0.1:${restPort}`,
    }),
    connector: lines({
      name: 'relay-bench-debezium',
      'connector.class': 'io.debezium.connector.mongodb.MongoDbConnector',
      'mongodb.connection.string': s.mongoUri,
      'topic.prefix': s.topicPrefix,
      'collection.include.list': s.collection,
      'snapshot.mode': 'no_data',
      'tasks.max': '1',
    }),
  };
}

export async function startDebezium(libs: string, s: DebeziumSettings): Promise<ConnectWorker> {
  await mkdir(path.join(s.dir, 'plugins'), { recursive: true });
  const props = properties(s, await freePort());
  const workerFile = path.join(s.dir, 'worker.properties');
  const connectorFile = path.join(s.dir, 'debezium.properties');
  await writeFile(workerFile, props.worker);
  await writeFile(connectorFile, props.connector);
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const child = spawn(
    java,
    [
      ...HEAP,
      `-Dlog4j2.configurationFile=${LOG4J}`,
      '-cp',
      path.join(libs, '*'),
      'org.apache.kafka.connect.cli.ConnectStandalone',
      workerFile,
      connectorFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const spawnedAt = performance.now();
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n'));
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  let stopping: Promise<number> | null = null;
  return {
    child,
    pid: child.pid!,
    spawnedAt,
    exited,
    tail: () =>
      lines
        .filter((l) => l.trim())
        .slice(-40)
        .join('\n'),
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return exited;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })()),
  };
}
