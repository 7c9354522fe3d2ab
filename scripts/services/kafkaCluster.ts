/**
 * A local Kafka cluster of N KRaft nodes for development and the fault suite: every node is broker and
 * controller (a controller quorum of N voters), on its own free 127.0.0.1 ports, with
 * default.replication.factor=N and min.insync.replicas=2 (for N ≥ 3), as production runs Kafka.
 *
 * Each node has three listeners: INTERNAL (between brokers, always direct and PLAINTEXT), EXTERNAL (for
 * clients; its advertised port can be a test's TCP proxy, so a client's whole path to one broker can be
 * cut) and CONTROLLER. EXTERNAL may require SASL (PLAIN or SCRAM) with the StandardAuthorizer (ACL tests).
 *
 * Layout: <dataDir>/cluster.json (cluster id, ports: a restart reuses them) and <dataDir>/node-<id>/
 * (server.properties, kafka.pid, kafka.log, kraft-logs). Nodes are stopped only through their pid files.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  checkJava,
  ensureKafkaJars,
  formatKafkaStorage,
  freePort,
  kafkaJvm,
  kafkaJvmOptions,
  kafkaRoundTrip,
  kafkaVersion,
  newClusterId,
  portIsFree,
  type KafkaJvm,
} from './kafka.js';
import { readPidFile, isOurProcess } from './state.js';

export interface KafkaClusterOptions {
  dataDir: string;
  nodes: number;
  detached?: boolean;
  log?: (line: string) => void;
  /**
   * Called once per node before its properties are written: returns the port advertised to clients for
   * its EXTERNAL listener (e.g. a TCP proxy in front of `port`). Default: `port` itself.
   */
  advertise?: (node: { nodeId: number; port: number }) => Promise<number> | number;
  /**
   * SASL on the client listener with the StandardAuthorizer; "admin" is the super user. PLAIN (the
   * default) keeps the users in the JAAS config; SCRAM users are created when the storage is formatted
   * (`kafka-storage format --add-scram`, as KRaft clusters bootstrap them).
   */
  sasl?: { users: Record<string, string>; mechanism?: SaslMechanism };
  /** Extra broker properties (e.g. producer.id.expiration.ms for a test). */
  properties?: Record<string, string | number>;
  heapMb?: number;
}

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaClusterNode {
  readonly nodeId: number;
  /** The EXTERNAL listener's own port. */
  readonly port: number;
  /** The port clients are told to use (a proxy's, or `port`). */
  readonly advertisedPort: number;
  /** The INTERNAL listener (PLAINTEXT, never proxied): for probes and admin tools in tests. */
  readonly internalPort: number;
  readonly pid: number;
  readonly running: boolean;
  readonly dataDir: string;
  /** Controlled shutdown (SIGTERM; SIGKILL after 30 s) and wait until the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Start again with the same ports and data; resolves when the node is back in the cluster. */
  start(): Promise<void>;
}

export interface KafkaCluster {
  /** Comma-separated client addresses (advertised EXTERNAL ports): KAFKA_BROKERS. */
  readonly brokers: string;
  /** Comma-separated INTERNAL addresses (direct, PLAINTEXT). */
  readonly internalBrokers: string;
  readonly nodes: readonly KafkaClusterNode[];
  readonly dataDir: string;
  readonly version: string;
  node(nodeId: number): KafkaClusterNode;
  /** Stop every running node (controlled shutdowns, in parallel). Data is kept. */
  stop(): Promise<void>;
}

interface NodePorts {
  nodeId: number;
  port: number;
  internalPort: number;
  controllerPort: number;
  advertisedPort: number;
}

interface ClusterFile {
  version: string;
  clusterId: string;
  nodes: NodePorts[];
}

const SASL_ADMIN = 'admin';
/** Several JVMs start at once on a possibly busy machine: more patience than for one broker. */
const CLUSTER_READY_TIMEOUT_MS = 240_000;

export async function startKafkaCluster(opts: KafkaClusterOptions): Promise<KafkaCluster> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const version = kafkaVersion();
  const count = opts.nodes;
  if (!Number.isInteger(count) || count < 1 || count > 9)
    throw new Error(`nodes must be 1..9 (got ${count})`);
  await checkJava();
  const [libs] = await Promise.all([ensureKafkaJars(log, version), mkdir(dataDir, { recursive: true })]);
  const classpath = `${libs}/*`;

  const stateFile = path.join(dataDir, 'cluster.json');
  const previous = existsSync(stateFile)
    ? (JSON.parse(await readFile(stateFile, 'utf8')) as ClusterFile)
    : undefined;
  const clusterId = previous?.clusterId ?? newClusterId();
  const taken = new Set<number>();
  const pick = async (wanted?: number): Promise<number> => {
    if (wanted !== undefined && !taken.has(wanted) && (await portIsFree(wanted))) {
      taken.add(wanted);
      return wanted;
    }
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const ports: NodePorts[] = [];
  for (let nodeId = 1; nodeId <= count; nodeId++) {
    const before = previous?.nodes.find((n) => n.nodeId === nodeId);
    const port = await pick(before?.port);
    const internalPort = await pick(before?.internalPort);
    const controllerPort = await pick(before?.controllerPort);
    const advertisedPort = opts.advertise ? await opts.advertise({ nodeId, port }) : port;
    ports.push({ nodeId, port, internalPort, controllerPort, advertisedPort });
  }
  await writeFile(stateFile, `${JSON.stringify({ version, clusterId, nodes: ports }, null, 2)}\n`);

  const voters = ports.map((p) => `${p.nodeId}@127.0.0.1:${p.controllerPort}`).join(',');
  const nodes = await Promise.all(
    ports.map(async (p) => {
      const nodeDir = path.join(dataDir, `node-${p.nodeId}`);
      await mkdir(nodeDir, { recursive: true });
      const props = path.join(nodeDir, 'server.properties');
      const running = readPidFile(path.join(nodeDir, 'kafka.pid'));
      if (running !== undefined && isOurProcess(running, ['kafka.Kafka', props])) {
        throw new Error(
          `kafka node ${p.nodeId} already running from ${nodeDir} (pid ${running}); stop it first`,
        );
      }
      await writeFile(props, nodeProperties(nodeDir, p, voters, count, opts));
      const { jvm, logProps } = kafkaJvmOptions(nodeDir, opts.heapMb ?? 384);
      const extraArgs = scramFormatArgs(opts.sasl);
      if (
        await formatKafkaStorage({ dataDir: nodeDir, props, classpath, clusterId, jvm, logProps, extraArgs })
      ) {
        log(`kafka ${version}: formatted node ${p.nodeId}`);
      }
      const internal = `127.0.0.1:${p.internalPort}`;
      const jvmProcess = kafkaJvm({
        dataDir: nodeDir,
        props,
        classpath,
        jvm,
        logProps,
        detached: opts.detached ?? false,
        ready: () => nodeRegistered(internal, p.nodeId),
      });
      return { ports: p, nodeDir, jvm: jvmProcess };
    }),
  );

  // A quorum of N voters elects a leader only once a majority runs: launch all, then wait for each.
  const t0 = Date.now();
  await Promise.all(nodes.map((n) => n.jvm.launch()));
  try {
    await Promise.all(nodes.map((n) => n.jvm.waitReady(CLUSTER_READY_TIMEOUT_MS)));
  } catch (error) {
    await Promise.all(nodes.map((n) => n.jvm.stop()));
    throw error;
  }
  const internalBrokers = ports.map((p) => `127.0.0.1:${p.internalPort}`).join(',');
  log(
    `kafka ${version}: ${count} node(s) ready at ${ports.map((p) => `127.0.0.1:${p.advertisedPort}`).join(',')} (${Date.now() - t0} ms)`,
  );

  const clusterNodes = nodes.map(({ ports: p, nodeDir, jvm }) => clusterNode(p, nodeDir, jvm, log));
  return {
    brokers: ports.map((p) => `127.0.0.1:${p.advertisedPort}`).join(','),
    internalBrokers,
    nodes: clusterNodes,
    dataDir,
    version,
    node: (nodeId) => {
      const found = clusterNodes.find((n) => n.nodeId === nodeId);
      if (!found) throw new Error(`no kafka node ${nodeId} (nodes: 1..${count})`);
      return found;
    },
    stop: async () => {
      await Promise.all(clusterNodes.map((n) => n.stop()));
    },
  };
}

function clusterNode(
  p: NodePorts,
  nodeDir: string,
  jvm: KafkaJvm,
  log: (l: string) => void,
): KafkaClusterNode {
  return {
    nodeId: p.nodeId,
    port: p.port,
    advertisedPort: p.advertisedPort,
    internalPort: p.internalPort,
    dataDir: nodeDir,
    get pid() {
      return jvm.pid;
    },
    get running() {
      return jvm.running;
    },
    stop: () => jvm.stop(),
    kill: () => jvm.kill(),
    start: async () => {
      if (jvm.running) throw new Error(`kafka node ${p.nodeId} already running (pid ${jvm.pid})`);
      const t0 = Date.now();
      await jvm.launch();
      await jvm.waitReady(CLUSTER_READY_TIMEOUT_MS);
      log(`kafka node ${p.nodeId}: ready again, pid ${jvm.pid} (${Date.now() - t0} ms)`);
    },
  };
}

/** Ready = answers a round trip on its own listener and is a registered broker of the cluster. */
async function nodeRegistered(address: string, nodeId: number): Promise<boolean> {
  if (!(await kafkaRoundTrip(address, 2_000))) return false;
  const admin = new Kafka({
    clientId: 'services-probe',
    brokers: [address],
    connectionTimeout: 2_000,
    requestTimeout: 2_000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    return brokers.some((b) => b.nodeId === nodeId);
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function nodeProperties(
  nodeDir: string,
  p: NodePorts,
  voters: string,
  count: number,
  opts: KafkaClusterOptions,
): string {
  const replicas = Math.min(3, count);
  const minIsr = count >= 3 ? 2 : 1;
  const external = opts.sasl ? 'SASL_PLAINTEXT' : 'PLAINTEXT';
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': p.nodeId,
    'controller.quorum.voters': voters,
    listeners: `INTERNAL://127.0.0.1:${p.internalPort},EXTERNAL://127.0.0.1:${p.port},CONTROLLER://127.0.0.1:${p.controllerPort}`,
    'advertised.listeners': `INTERNAL://127.0.0.1:${p.internalPort},EXTERNAL://127.0.0.1:${p.advertisedPort}`,
    'listener.security.protocol.map': `INTERNAL:PLAINTEXT,EXTERNAL:${external},CONTROLLER:PLAINTEXT`,
    'inter.broker.listener.name': 'INTERNAL',
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': path.join(nodeDir, 'kraft-logs'),
    'auto.create.topics.enable': 'true',
    'num.partitions': 1,
    'default.replication.factor': replicas,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': replicas,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': replicas,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': replicas,
    'share.coordinator.state.topic.min.isr': minIsr,
    'group.initial.rebalance.delay.ms': 0,
    'unclean.leader.election.enable': 'false',
    // Leaders move only when a test (or an operator) moves them: the periodic preferred-leader
    // rebalance would otherwise elect leaders at random moments of a fault scenario.
    'auto.leader.rebalance.enable': 'false',
    // A SIGKILLed node re-registers only after its old session expired: 4 s instead of 9.
    'broker.session.timeout.ms': 4000,
    'broker.heartbeat.interval.ms': 1000,
    // Followers drop out of the ISR 10 s after they stop fetching (30 s by default): a killed broker
    // leaves the ISR in time for a test, and min.insync.replicas=2 still refuses acks=all writes that
    // only one replica has.
    'replica.lag.time.max.ms': 10000,
    'num.network.threads': 2,
    'num.io.threads': 2,
    'num.replica.fetchers': 1,
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
    ...opts.properties,
  };
  if (opts.sasl) {
    const mechanism = opts.sasl.mechanism ?? 'PLAIN';
    const userEntries = Object.entries(saslUsers(opts.sasl))
      .map(([user, password]) => `user_${user}="${password}"`)
      .join(' ');
    const jaas =
      mechanism === 'PLAIN'
        ? `org.apache.kafka.common.security.plain.PlainLoginModule required ${userEntries};`
        : 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    Object.assign(props, {
      'sasl.enabled.mechanisms': mechanism,
      'listener.name.external.sasl.enabled.mechanisms': mechanism,
      [`listener.name.external.${mechanism.toLowerCase()}.sasl.jaas.config`]: jaas,
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      // INTERNAL and CONTROLLER are PLAINTEXT: their principal is ANONYMOUS, the brokers themselves.
      'super.users': `User:${SASL_ADMIN};User:ANONYMOUS`,
      'allow.everyone.if.no.acl.found': 'false',
    });
  }
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

function saslUsers(sasl: NonNullable<KafkaClusterOptions['sasl']>): Record<string, string> {
  return { [SASL_ADMIN]: sasl.users[SASL_ADMIN] ?? 'admin-secret', ...sasl.users };
}

/** SCRAM credentials are metadata records: written into every node's storage when it is formatted. */
function scramFormatArgs(sasl: KafkaClusterOptions['sasl']): string[] {
  const mechanism = sasl?.mechanism ?? 'PLAIN';
  if (!sasl || mechanism === 'PLAIN') return [];
  return Object.entries(saslUsers(sasl)).flatMap(([user, password]) => [
    '--add-scram',
    `${mechanism}=[name=${user},password=${password}]`,
  ]);
}

/**
 * One node of a cluster started earlier (possibly by another process, e.g. `services:up`), for
 * `npm run services -- kafka stop|kill|start|restart <node>`: pid file and ports from its data dir.
 */
export async function openKafkaClusterNode(
  dataDir: string,
  nodeId: number,
  log: (line: string) => void = () => {},
): Promise<KafkaClusterNode> {
  const dir = path.resolve(dataDir);
  const stateFile = path.join(dir, 'cluster.json');
  if (!existsSync(stateFile))
    throw new Error(`no kafka cluster in ${dir} (start one with KAFKA_BROKER_COUNT=3)`);
  const cluster = JSON.parse(await readFile(stateFile, 'utf8')) as ClusterFile;
  const p = cluster.nodes.find((n) => n.nodeId === nodeId);
  if (!p)
    throw new Error(`no kafka node ${nodeId} (nodes: ${cluster.nodes.map((n) => n.nodeId).join(', ')})`);
  const nodeDir = path.join(dir, `node-${nodeId}`);
  const props = path.join(nodeDir, 'server.properties');
  const libs = await ensureKafkaJars(log, cluster.version);
  const { jvm, logProps } = kafkaJvmOptions(nodeDir, 384);
  const jvmProcess = kafkaJvm({
    dataDir: nodeDir,
    props,
    classpath: `${libs}/*`,
    jvm,
    logProps,
    detached: true,
    ready: () => nodeRegistered(`127.0.0.1:${p.internalPort}`, nodeId),
    pid: readPidFile(path.join(nodeDir, 'kafka.pid')),
  });
  return clusterNode(p, nodeDir, jvmProcess, log);
}

/** Node ids and their recorded pids (0: not running) of the cluster in `dataDir`, or [] if none. */
export async function clusterNodePids(
  dataDir: string,
): Promise<{ nodeId: number; pid: number; port: number }[]> {
  const stateFile = path.join(path.resolve(dataDir), 'cluster.json');
  if (!existsSync(stateFile)) return [];
  const cluster = JSON.parse(await readFile(stateFile, 'utf8')) as ClusterFile;
  return cluster.nodes.map((n) => {
    const nodeDir = path.join(path.resolve(dataDir), `node-${n.nodeId}`);
    const pid = readPidFile(path.join(nodeDir, 'kafka.pid')) ?? 0;
    const alive = pid !== 0 && isOurProcess(pid, ['kafka.Kafka', path.join(nodeDir, 'server.properties')]);
    return { nodeId: n.nodeId, pid: alive ? pid : 0, port: n.advertisedPort };
  });
}
