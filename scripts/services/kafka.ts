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
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
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
  waitUntilGone,
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
export async function checkJava(): Promise<void> {
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
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A KRaft cluster ID: 16 random bytes, base64url. One in 64 would start with "-", which the storage
 * tool's command line takes for an option ("expected one argument"); Kafka's own Uuid.randomUuid()
 * redraws those, and so do we.
 */
export function newClusterId(): string {
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

export function tail(file: string, lines = 30): string {
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
    brokers: brokers.split(',').map((b) => b.trim()),
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

  const { jvm, logProps } = kafkaJvmOptions(dataDir);
  const t0 = Date.now();
  if (
    await formatKafkaStorage({
      dataDir,
      props: files.props,
      classpath,
      clusterId: state.clusterId,
      jvm,
      logProps,
    })
  ) {
    log(`kafka ${version}: formatted ${shown(dataDir)} (${Date.now() - t0} ms)`);
  }

  const brokers = `127.0.0.1:${port}`;
  const jvmProcess = kafkaJvm({
    dataDir,
    props: files.props,
    classpath,
    jvm,
    logProps,
    detached: opts.detached ?? false,
    ready: () => kafkaRoundTrip(brokers, 2_000),
  });
  const launch = async (): Promise<void> => {
    const t0 = Date.now();
    await jvmProcess.launch();
    await jvmProcess.waitReady();
    log(`kafka ${version}: ready at ${brokers}, pid ${jvmProcess.pid} (${Date.now() - t0} ms)`);
  };

  await launch();
  const service: KafkaService = {
    brokers,
    port,
    get pid() {
      return jvmProcess.pid;
    },
    dataDir,
    version,
    stop: () => jvmProcess.stop(),
    start: async () => {
      if (jvmProcess.running) throw new Error(`kafka already running (pid ${jvmProcess.pid})`);
      await launch();
    },
  };
  return service;
}

/** The JVM options every local broker runs with (small heap: up to seven brokers share the machine). */
export function kafkaJvmOptions(dataDir: string, heapMb = 512): { jvm: string[]; logProps: string[] } {
  const jvm = ['-Xms128m', `-Xmx${heapMb}m`, '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
  // log4j2's own shutdown hook would stop logging before Kafka's shutdown hook is done, hiding
  // the last (most interesting) lines of a stop; the console appender flushes every line anyway.
  const logProps = [
    `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
    '-Dlog4j2.shutdownHookEnabled=false',
    `-Dkafka.logs.dir=${path.join(dataDir, 'logs')}`,
  ];
  return { jvm, logProps };
}

/** Formats a KRaft data dir once (meta.properties exists afterwards); later starts keep the data. */
export async function formatKafkaStorage(o: {
  dataDir: string;
  props: string;
  classpath: string;
  clusterId: string;
  jvm: string[];
  logProps: string[];
  /** More `kafka-storage format` arguments, e.g. `--add-scram` (SCRAM users exist from the start). */
  extraArgs?: string[];
}): Promise<boolean> {
  if (existsSync(path.join(o.dataDir, 'kraft-logs', 'meta.properties'))) return false;
  try {
    await execFileP(javaBin(), [
      ...o.jvm,
      ...o.logProps,
      '-cp',
      o.classpath,
      STORAGE_TOOL,
      'format',
      '-t',
      o.clusterId,
      '-c',
      o.props,
      ...(o.extraArgs ?? []),
    ]);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`kafka storage format failed: ${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
  return true;
}

/** One broker JVM: launched from a formatted data dir, stopped through the pid it recorded only. */
export interface KafkaJvm {
  readonly pid: number;
  readonly running: boolean;
  /** Spawn the JVM and record its pid (does not wait for readiness). */
  launch(): Promise<void>;
  /** Poll `ready` until it answers; throws with the log's tail if the JVM exits or never answers. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM (a controlled shutdown), SIGKILL after a timeout; waits until the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL at once (a crash); waits until the process is gone. */
  kill(): Promise<void>;
}

export function kafkaJvm(o: {
  dataDir: string;
  props: string;
  classpath: string;
  jvm: string[];
  logProps: string[];
  detached: boolean;
  ready: () => Promise<boolean>;
  /** A pid recorded earlier (a JVM started by another process), to stop or kill it. */
  pid?: number | undefined;
}): KafkaJvm {
  const pidFile = path.join(o.dataDir, 'kafka.pid');
  const logFile = path.join(o.dataDir, 'kafka.log');
  const markers = [MAIN_CLASS, o.props];
  let pid = o.pid ?? 0;
  let exited = true;
  let launches = 0; // which launch is current: a pid can be reused, a launch number cannot
  return {
    get pid() {
      return pid;
    },
    get running() {
      return pid !== 0 && isOurProcess(pid, markers);
    },
    launch: async () => {
      const out = openSync(logFile, 'a');
      const child = spawn(javaBin(), [...o.jvm, ...o.logProps, '-cp', o.classpath, MAIN_CLASS, o.props], {
        cwd: o.dataDir,
        stdio: ['ignore', out, out],
        detached: o.detached, // own session: survives the end of `services:up`
      });
      closeSync(out);
      if (child.pid === undefined) throw new Error(`could not start ${javaBin()}`);
      pid = child.pid;
      exited = false;
      const launch = ++launches;
      await writePidFile(pidFile, pid);
      if (o.detached) child.unref();
      else killOnExit(child);
      // Only this launch's child: the exit event of a JVM killed just before may arrive after this
      // launch, and must not make waitReady think the new JVM died. Compared by launch number, not pid,
      // since the OS may give the new JVM the old one's pid.
      const gone = (): void => {
        if (launch === launches) exited = true;
      };
      child.once('exit', gone);
      child.once('error', gone); // e.g. java vanished since checkJava()
    },
    waitReady: async (timeoutMs = READY_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await o.ready())) {
        if (exited) throw new Error(`kafka exited during startup; ${logFile}:\n${tail(logFile)}`);
        if (Date.now() > deadline) {
          await terminate(pid, markers, 5_000);
          throw new Error(`kafka not ready after ${timeoutMs} ms; ${logFile}:\n${tail(logFile)}`);
        }
        await sleep(200);
      }
    },
    stop: async () => {
      await terminate(pid, markers);
      await rm(pidFile, { force: true });
    },
    kill: async () => {
      if (isOurProcess(pid, markers)) {
        process.kill(pid, 'SIGKILL');
        if (!(await waitUntilGone(pid, 10_000))) throw new Error(`pid ${pid} survived SIGKILL`);
      }
      await rm(pidFile, { force: true });
    },
  };
}

/**
 * Stops the broker whose pid is recorded in <dataDir>/kafka.pid, and the nodes of a cluster recorded in
 * <dataDir>/node-<id>/kafka.pid (used by `services:down` and to reap a killed test run's brokers).
 */
export async function stopKafkaByPidFile(dataDir: string): Promise<void> {
  const dir = path.resolve(dataDir);
  const nodeDirs = existsSync(dir)
    ? (await readdir(dir)).filter((d) => /^node-\d+$/.test(d)).map((d) => path.join(dir, d))
    : [];
  await Promise.all(
    [dir, ...nodeDirs].map(async (d) => {
      const pidFile = path.join(d, 'kafka.pid');
      const pid = readPidFile(pidFile);
      if (pid !== undefined) await terminate(pid, [MAIN_CLASS, path.join(d, 'server.properties')]);
      await rm(pidFile, { force: true });
    }),
  );
}
