/**
 * A real single-node Apache Kafka broker (KRaft: broker + controller in one JVM) for development
 * and tests, run from the Maven Central jars that scripts/kafka/pom.xml copies into
 * .cache/kafka-<version>/libs. No Docker, no tarball download.
 *
 * Version: see KAFKA_VERSION below and scripts/kafka/README.md for why it is that one.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import {
  PrerequisiteError,
  REPO_ROOT,
  isOurProcess,
  killOnExit,
  readPidFile,
  sleep,
  terminate,
  writePidFile,
} from './state.js';

/**
 * The newest Kafka that kafkajs 2.2.4 works with: 4.0.0 to 4.4.0 were all tested (ApiVersions
 * ranges vs kafkajs, and test/integration/kafka-broker.test.ts); see scripts/kafka/README.md.
 * Keep equal to <kafka.version> in scripts/kafka/pom.xml. RELAY_KAFKA_VERSION overrides it.
 */
export const KAFKA_VERSION = '4.4.0';

export interface KafkaService {
  /** "127.0.0.1:PORT", ready for kafkajs `brokers: [brokers]` or KAFKA_BROKERS. */
  brokers: string;
  port: number;
  /** Pid of the current JVM (changes after stop()/start()). */
  pid: number;
  dataDir: string;
  version: string;
  /** SIGTERM the JVM (SIGKILL after a timeout) and wait until it is gone. Data is kept. */
  stop(): Promise<void>;
  /** Start again on the same ports with the same data (broker-outage tests). */
  start(): Promise<void>;
}

/** Persisted in <dataDir>/kafka.json so a restart reuses ports and the formatted cluster id. */
interface KafkaDirState {
  version: string;
  clusterId: string;
  port: number;
  controllerPort: number;
}

const execFileP = promisify(execFile);
const MAIN_CLASS = 'kafka.Kafka';
const STORAGE_TOOL = 'kafka.tools.StorageTool';
const LOG4J_CONFIG = path.join(REPO_ROOT, 'scripts/kafka/log4j2.yaml');
const POM = path.join(REPO_ROOT, 'scripts/kafka/pom.xml');
const READY_TIMEOUT_MS = 90_000;

/** Repo-relative when inside the repo (short log lines), absolute otherwise. */
const shown = (p: string): string => (p.startsWith(REPO_ROOT + path.sep) ? path.relative(REPO_ROOT, p) : p);

export function kafkaVersion(): string {
  return process.env.RELAY_KAFKA_VERSION ?? KAFKA_VERSION;
}

function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

/** Kafka 4.x brokers need Java 17+. One clear line if java is missing or too old. */
async function checkJava(): Promise<void> {
  let out: string;
  try {
    out = (await execFileP(javaBin(), ['-version'])).stderr;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new PrerequisiteError('java not found: install a JDK 17');
    throw err;
  }
  const major = Number(/version "(\d+)/.exec(out)?.[1] ?? '0');
  if (major < 17) throw new PrerequisiteError(`java ${major} found, Kafka 4 needs 17+: install a JDK 17`);
}

async function runMvn(args: string[]): Promise<void> {
  try {
    await execFileP('mvn', args, { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new PrerequisiteError('mvn not found: install Apache Maven');
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`mvn ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

/**
 * Copies the broker jars into .cache/kafka-<v>/libs once. They are copied into a temp dir that
 * gets a `.complete` marker and is then renamed to libs/ in one step, so libs/ exists only when
 * complete (an interrupted or concurrent download can't leave half a classpath; `libs/*` on the
 * java command line only picks up *.jar). Maven is first tried offline (-o): jars already in
 * ~/.m2 need no network at all.
 */
export async function ensureKafkaJars(
  log: (line: string) => void = () => {},
  version = kafkaVersion(),
): Promise<string> {
  const base = path.join(REPO_ROOT, '.cache', `kafka-${version}`);
  const libs = path.join(base, 'libs');
  const MARKER = '.complete';
  if (existsSync(path.join(libs, MARKER))) return libs;

  const partial = path.join(base, `libs.partial-${process.pid}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  const args = [
    '-B',
    '-q',
    '-f',
    POM,
    `-Dkafka.version=${version}`,
    `-Dlibs.dir=${partial}`,
    'dependency:copy-dependencies',
  ];
  const t0 = Date.now();
  try {
    await runMvn(['-o', ...args]);
  } catch (err) {
    if (err instanceof PrerequisiteError) throw err;
    log(`kafka ${version}: jars not all in ~/.m2, downloading from Maven Central`);
    await runMvn(args);
  }
  await writeFile(path.join(partial, MARKER), `${new Date().toISOString()}\n`);
  if (existsSync(path.join(libs, MARKER))) {
    await rm(partial, { recursive: true, force: true }); // another process finished first
  } else {
    await rm(libs, { recursive: true, force: true }); // incomplete leftover without a marker
    await rename(partial, libs);
  }
  log(`kafka ${version}: jars ready in ${shown(libs)} (${Date.now() - t0} ms)`);
  return libs;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Kafka's Uuid.toString(): 16 random bytes, base64url without padding (22 chars). */
/**
 * A KRaft cluster ID: 16 random bytes, base64url. One in 64 would start with "-", which the storage
 * tool's command line takes for an option ("expected one argument"); Kafka's own Uuid.randomUuid()
 * redraws those, and so do we.
 */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties(dataDir: string, s: KafkaDirState): string {
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static single voter: the controller address lives in this file, not in the formatted
    // storage, so it cannot go stale between runs.
    'controller.quorum.voters': `1@127.0.0.1:${s.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${s.port},CONTROLLER://127.0.0.1:${s.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${s.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': path.join(dataDir, 'kraft-logs'),
    'auto.create.topics.enable': 'true',
    'num.partitions': 1,
    'offsets.topic.replication.factor': 1,
    // One partition each instead of 50: the first consumer group join otherwise waits for
    // 50 partitions to be created on a 2-core machine.
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // After a crash (SIGKILL) the restarted broker cannot register until the dead incarnation's
    // session expires: 9 s by default, 4 s here, which keeps crash/restart tests quick.
    'broker.session.timeout.ms': 4000,
    'broker.heartbeat.interval.ms': 1000,
    // Small footprint: 2 cores, and the cleaner's 128 MB default buffer would eat the heap.
    'num.network.threads': 2,
    'num.io.threads': 2,
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Readiness = a real round trip: cluster description (brokers + controller) and a metadata request. */
export async function kafkaRoundTrip(brokers: string, timeoutMs = 3_000): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'services-probe',
    brokers: [brokers],
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    await admin.listTopics();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function startKafka(opts: {
  dataDir: string;
  port?: number;
  detached?: boolean;
  log?: (l: string) => void;
}): Promise<KafkaService> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const version = kafkaVersion();
  const files = {
    state: path.join(dataDir, 'kafka.json'),
    props: path.join(dataDir, 'server.properties'),
    pid: path.join(dataDir, 'kafka.pid'),
    log: path.join(dataDir, 'kafka.log'),
    meta: path.join(dataDir, 'kraft-logs', 'meta.properties'),
  };
  const markers = [MAIN_CLASS, files.props];

  const running = readPidFile(files.pid);
  if (running !== undefined && isOurProcess(running, markers)) {
    throw new Error(`kafka already running from ${dataDir} (pid ${running}); stop it first`);
  }
  await checkJava();
  const [libs] = await Promise.all([ensureKafkaJars(log, version), mkdir(dataDir, { recursive: true })]);
  const classpath = `${libs}/*`;

  // Reuse ports and cluster id when the directory was used before, unless a port is now taken.
  let state: KafkaDirState | undefined;
  if (existsSync(files.state) && existsSync(files.meta)) {
    state = JSON.parse(await readFile(files.state, 'utf8')) as KafkaDirState;
  }
  const port = opts.port ?? (state && (await portIsFree(state.port)) ? state.port : await freePort());
  let controllerPort =
    state && (await portIsFree(state.controllerPort)) ? state.controllerPort : await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  state = { version, clusterId: state?.clusterId ?? newClusterId(), port, controllerPort };
  await writeFile(files.state, `${JSON.stringify(state, null, 2)}\n`);
  await writeFile(files.props, serverProperties(dataDir, state));

  const jvm = ['-Xms128m', '-Xmx512m', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
  // log4j2's own shutdown hook would stop logging before Kafka's shutdown hook is done, hiding
  // the last (most interesting) lines of a stop; the console appender flushes every line anyway.
  const logProps = [
    `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
    '-Dlog4j2.shutdownHookEnabled=false',
    `-Dkafka.logs.dir=${path.join(dataDir, 'logs')}`,
  ];

  // Format on first start only (meta.properties exists afterwards); later starts keep the data.
  if (!existsSync(files.meta)) {
    const t0 = Date.now();
    try {
      await execFileP(javaBin(), [
        ...jvm,
        ...logProps,
        '-cp',
        classpath,
        STORAGE_TOOL,
        'format',
        '-t',
        state.clusterId,
        '-c',
        files.props,
      ]);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`kafka storage format failed: ${e.stdout ?? ''}${e.stderr ?? e.message}`);
    }
    log(`kafka ${version}: formatted ${shown(dataDir)} (${Date.now() - t0} ms)`);
  }

  const brokers = `127.0.0.1:${port}`;
  const detached = opts.detached ?? false;
  let pid = 0;

  const launch = async (): Promise<void> => {
    const t0 = Date.now();
    const out = openSync(files.log, 'a');
    const child = spawn(javaBin(), [...jvm, ...logProps, '-cp', classpath, MAIN_CLASS, files.props], {
      cwd: dataDir,
      stdio: ['ignore', out, out],
      detached, // own session: survives the end of `services:up`
    });
    closeSync(out);
    if (child.pid === undefined) throw new Error(`could not start ${javaBin()}`);
    pid = child.pid;
    await writePidFile(files.pid, pid);
    if (detached) child.unref();
    else killOnExit(child);

    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true)); // e.g. java vanished since checkJava()
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await kafkaRoundTrip(brokers, 2_000))) {
      if (exited) throw new Error(`kafka exited during startup; ${files.log}:\n${tail(files.log)}`);
      if (Date.now() > deadline) {
        await terminate(pid, markers, 5_000);
        throw new Error(`kafka not ready after ${READY_TIMEOUT_MS} ms; ${files.log}:\n${tail(files.log)}`);
      }
      await sleep(200);
    }
    log(`kafka ${version}: ready at ${brokers}, pid ${pid} (${Date.now() - t0} ms)`);
  };

  await launch();
  const service: KafkaService = {
    brokers,
    port,
    get pid() {
      return pid;
    },
    dataDir,
    version,
    stop: async () => {
      await terminate(pid, markers);
      await rm(files.pid, { force: true });
    },
    start: async () => {
      if (isOurProcess(pid, markers)) throw new Error(`kafka already running (pid ${pid})`);
      await launch();
    },
  };
  return service;
}

/** Stops the broker whose pid is recorded in <dataDir>/kafka.pid (used by `services:down`). */
export async function stopKafkaByPidFile(dataDir: string): Promise<void> {
  const dir = path.resolve(dataDir);
  const pidFile = path.join(dir, 'kafka.pid');
  const pid = readPidFile(pidFile);
  if (pid !== undefined) await terminate(pid, [MAIN_CLASS, path.join(dir, 'server.properties')]);
  await rm(pidFile, { force: true });
}
