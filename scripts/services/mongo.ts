/**
 * A change-stream-capable MongoDB for local runs and tests, in this order of preference:
 *   1. MONGODB_URI, used as given (capabilities are asked from the server);
 *   2. a real mongod: a 1-member wiredTiger replica set through mongodb-memory-server, when a binary can be had
 *      (MONGOMS_SYSTEM_BINARY, a cached download, or a download if the download host is reachable);
 *   3. mongo-java-server with our launcher (scripts/mongo-java-server), which makes its change streams follow
 *      MongoDB's documented format. It needs a JDK 17 and Maven (to build the launcher once).
 * MONGO_KIND (or `kind`) requires one of them instead of falling back: `mongod` fails when no real mongod can be had
 * (CI uses it, so a broken download can never turn into a green run on the stand-in), `stand-in` always starts the
 * stand-in (ignoring MONGODB_URI: for tests of the stand-in itself, or of behaviour only it can be made to show).
 * Servers bind to 127.0.0.1. Started processes are recorded in stateDir (mongo.json) and stopped by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as dns } from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';
import { PrerequisiteError, redactUri } from './state.js';

export type MongoKind = 'env' | 'mongodb-memory-server' | 'mongo-java-server';
/** What MONGO_KIND may require: a real mongod, or the stand-in. Unset: the first that can be had. */
export type RequiredMongoKind = 'mongod' | 'stand-in';
export const MONGO_KINDS: readonly RequiredMongoKind[] = ['mongod', 'stand-in'];
export interface MongoCapabilities {
  realMongod: boolean;
  /** Multi-document transactions with their isolation (a real replica set). */
  transactions: boolean;
  /** A committed transaction's changes appear as events sharing one cluster time, with lsid and txnNumber. */
  transactionEvents: boolean;
  databaseWatch: boolean;
  deploymentWatch: boolean;
  keepsDataAcrossRestart: boolean;
}
export interface MongoService {
  uri: string;
  kind: MongoKind;
  description: string;
  capabilities: MongoCapabilities;
  pid?: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}
export interface StartMongoOptions {
  stateDir: string;
  detached?: boolean;
  log?: (line: string) => void;
  /** Overrides MONGO_KIND. */
  kind?: RequiredMongoKind;
  /** Options of a started stand-in (ignored for a real mongod). */
  standIn?: StandInOptions;
}
export interface StandInOptions {
  /** Oplog cap in entries (default: MONGO_STANDIN_OPLOG_MAX_ENTRIES, else 1,000,000). */
  oplogMaxEntries?: number;
  /** Oplog cap in MB of BSON, like mongod's --oplogSize (default: MONGO_STANDIN_OPLOG_SIZE_MB, else 64). */
  oplogSizeMb?: number;
  /** Accept transactions (their change events only; no isolation). */
  transactions?: boolean;
  /** While idle, a no-op oplog entry every N seconds (default 10, mongod's periodicNoopIntervalSecs). */
  noopIntervalSeconds?: number;
}

/** What stateDir/mongo.json records, so that another process (`services:down`) can stop what we started. */
interface MongoState {
  kind: MongoKind;
  uri: string;
  description: string;
  capabilities: MongoCapabilities;
  /** The process we started: java, or the keeper node process that holds a MongoMemoryReplSet. */
  pid?: number;
  /** A string in that process's command line, checked before signalling it (pids get reused). */
  marker?: string;
  /** The mongod under a keeper, as a last resort if the keeper cannot stop it. */
  mongodPid?: number;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STAND_IN_DIR = path.join(REPO_ROOT, 'scripts', 'mongo-java-server');
const STAND_IN_JAR = path.join(STAND_IN_DIR, 'target', 'mongo-stand-in.jar');
const BUILD_CACHE = path.join(REPO_ROOT, '.cache', 'mongo-stand-in');
const STATE_FILE = 'mongo.json';
const KEEPER_FILE = 'mongo-keeper.json';
/** Change-log cap of the stand-in (entries); small values let tests provoke ChangeStreamHistoryLost (286). */
const OPLOG_CAP_ENV = 'MONGO_STANDIN_OPLOG_MAX_ENTRIES';
/** Its cap in MB of BSON: the stand-in keeps its oplog in the JVM heap, so it is capped by size as mongod is. */
const OPLOG_SIZE_ENV = 'MONGO_STANDIN_OPLOG_SIZE_MB';
/**
 * transactionLifetimeLimitSeconds of the servers started here (mongod's default is 60): a test that SIGKILLs a
 * process in the middle of a transaction leaves it open, holding its writes, until the server aborts it.
 */
export const TEST_TRANSACTION_LIFETIME_SECONDS = 10;
const STAND_IN_CAPABILITIES: MongoCapabilities = {
  realMongod: false,
  transactions: false,
  transactionEvents: false,
  databaseWatch: true,
  deploymentWatch: true,
  keepsDataAcrossRestart: false,
};
const MEMORY_SERVER_CAPABILITIES: MongoCapabilities = {
  realMongod: true,
  transactions: true,
  transactionEvents: true,
  databaseWatch: true,
  deploymentWatch: true,
  keepsDataAcrossRestart: true,
};

/** The kind MONGO_KIND (or `kind`) requires, or undefined for "the first that can be had". */
export function requiredMongoKind(kind = process.env.MONGO_KIND): RequiredMongoKind | undefined {
  if (kind === undefined || kind === '') return undefined;
  if ((MONGO_KINDS as readonly string[]).includes(kind)) return kind as RequiredMongoKind;
  throw new Error(`MONGO_KIND=${kind} is not a MongoDB kind; allowed: ${MONGO_KINDS.join(', ')} (or unset)`);
}

export async function startMongo(opts: StartMongoOptions): Promise<MongoService> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const required = requiredMongoKind(opts.kind ?? process.env.MONGO_KIND);
  fs.mkdirSync(opts.stateDir, { recursive: true });
  const given = process.env.MONGODB_URI;
  if (given && required !== 'stand-in') {
    const capabilities = await detectCapabilities(given).catch((error: Error) => {
      throw unreachableGivenUri(given, error);
    });
    if (required === 'mongod' && !capabilities.realMongod)
      throw new Error(
        `MONGO_KIND=mongod, but MONGODB_URI points to the mongo-java-server stand-in (${redactUri(given)})`,
      );
    const service = envService(given, capabilities);
    log(`MongoDB: ${service.description}`);
    return service;
  }
  const recorded = await runningFromState(opts.stateDir);
  if (recorded && opts.detached && kindMatches(recorded, required)) {
    // `services:up` twice: the detached server is still there, so keep it rather than leak a second one.
    log(`MongoDB: ${recorded.description} at ${recorded.uri} (already running, pid ${recorded.pid})`);
    return recorded;
  }
  const memory =
    required === 'stand-in' ? undefined : await tryMemoryServer(opts, log, required === 'mongod');
  const service = memory ?? (await startStandIn(opts, log));
  // A live detached server recorded here keeps its record (services:down must still find it).
  if (!recorded) writeState(opts.stateDir, service, stateExtras.get(service));
  log(`MongoDB: ${service.description} at ${service.uri}`);
  return service;
}

/**
 * A MONGODB_URI that does not answer. The usual cause: it was exported from an earlier
 * `. .services/env` whose services have been stopped since, so say that, not only the socket error.
 */
function unreachableGivenUri(uri: string, error: Error): PrerequisiteError {
  return new PrerequisiteError(
    `mongodb: MONGODB_URI=${redactUri(uri)} is set in the environment but does not answer (${error.message}). ` +
      'Start that server, or `unset MONGODB_URI` to have the services start one (a value left over ' +
      'from sourcing an earlier .services/env is the usual cause).',
  );
}

function kindMatches(service: MongoService, required: RequiredMongoKind | undefined): boolean {
  if (required === undefined) return true;
  return (service.kind === 'mongo-java-server') === (required === 'stand-in');
}

/** The detached server recorded in stateDir, if its process still runs and answers. */
async function runningFromState(stateDir: string): Promise<MongoService | undefined> {
  const state = readJson<MongoState>(path.join(stateDir, STATE_FILE));
  if (
    !state?.pid ||
    !isAlive(state.pid) ||
    (state.marker && !commandLineOf(state.pid).includes(state.marker))
  )
    return undefined;
  if (!(await succeeds(() => proveReady(state.uri, 5_000)))) return undefined;
  return {
    uri: state.uri,
    kind: state.kind,
    description: state.description,
    capabilities: state.capabilities,
    pid: state.pid,
    stop: () => stopMongoByStateDir(stateDir),
    restart: async () => {
      throw new Error(
        `restart a MongoDB started by another process with services:down and services:up (${stateDir})`,
      );
    },
  };
}

export async function stopMongoByStateDir(stateDir: string): Promise<void> {
  const file = path.join(stateDir, STATE_FILE);
  if (!fs.existsSync(file)) return;
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as MongoState;
  if (state.pid !== undefined) await stopPid(state.pid, state.marker);
  if (state.mongodPid !== undefined) await stopPid(state.mongodPid, 'mongod');
  fs.rmSync(file, { force: true });
}

export async function detectCapabilities(uri: string): Promise<MongoCapabilities> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    const admin = client.db('admin');
    const hello = await admin.command({ hello: 1 });
    const buildInfo = await admin.command({ buildInfo: 1 });
    const realMongod =
      buildInfo.mongoJavaServer === undefined &&
      !String(buildInfo.gitVersion).startsWith('mongo-java-server');
    const replicated = typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
    const transactions = replicated && (await succeeds(() => readOnlyTransaction(client)));
    return {
      realMongod,
      // The stand-in may accept transactions (--transactions) without their isolation.
      transactions: transactions && realMongod,
      transactionEvents: transactions,
      databaseWatch: await succeeds(() => openStream(client, 'db')),
      deploymentWatch: await succeeds(() => openStream(client, 'deployment')),
      // A real server keeps its data; we never restart a server we did not start, though.
      keepsDataAcrossRestart: realMongod,
    };
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------- MONGODB_URI

function envService(uri: string, capabilities: MongoCapabilities): MongoService {
  return {
    uri,
    kind: 'env',
    description: `MONGODB_URI (${capabilities.realMongod ? 'mongod' : 'mongo-java-server'}, transactions: ${capabilities.transactions})`,
    capabilities,
    stop: async () => {},
    restart: async () => {
      throw new Error('cannot restart a MongoDB given by MONGODB_URI');
    },
  };
}

/** A transaction that only reads: proves transaction support without writing to someone else's server. */
async function readOnlyTransaction(client: MongoClient): Promise<void> {
  const session = client.startSession();
  try {
    session.startTransaction();
    await client.db('mongo_kafka_relay_probe').collection('probe').findOne({}, { session });
    await session.commitTransaction();
  } finally {
    await session.endSession();
  }
}

/** Opens a change stream (the aggregate runs on the first tryNext) and closes it again. */
async function openStream(client: MongoClient, scope: 'db' | 'deployment'): Promise<void> {
  const options = { maxAwaitTimeMS: 50 };
  const stream =
    scope === 'db' ? client.db('mongo_kafka_relay_probe').watch([], options) : client.watch([], options);
  try {
    await stream.tryNext();
  } finally {
    await stream.close();
  }
}

async function succeeds(attempt: () => Promise<void>): Promise<boolean> {
  try {
    await attempt();
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------ mongodb-memory-server

type MongodSource = { systemBinary?: string } | { unavailable: string };

/** Finds a mongod without waiting for a download that cannot succeed (offline machines must fall back fast). */
async function locateMongod(): Promise<MongodSource> {
  const system = process.env.MONGOMS_SYSTEM_BINARY;
  if (system)
    return fs.existsSync(system)
      ? { systemBinary: system }
      : { unavailable: `MONGOMS_SYSTEM_BINARY ${system} not found` };
  const { DryMongoBinary } = await import('mongodb-memory-server');
  const cached = await DryMongoBinary.locateBinary(DryMongoBinary.getEnsuredOptions()).catch(() => undefined);
  if (cached) return { systemBinary: cached };
  const host = new URL(process.env.MONGOMS_DOWNLOAD_MIRROR ?? 'https://fastdl.mongodb.org').hostname;
  return (await reachable(host, 443, 3000))
    ? {}
    : { unavailable: `no cached mongod and ${host} is unreachable` };
}

async function reachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
  const attempt = (async () => {
    const { address } = await dns.lookup(host);
    const socket = net.connect({ host: address, port, timeout: timeoutMs });
    socket.unref();
    return new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => resolve(false));
    }).finally(() => socket.destroy());
  })().catch(() => false);
  return Promise.race([attempt, deadline]);
}

async function tryMemoryServer(
  opts: StartMongoOptions,
  log: (line: string) => void,
  required: boolean,
): Promise<MongoService | undefined> {
  const source = await locateMongod();
  if ('unavailable' in source) {
    if (required) throw new Error(`MONGO_KIND=mongod, but no mongod can be had: ${source.unavailable}`);
    log(`mongodb-memory-server not used: ${source.unavailable}`);
    return undefined;
  }
  process.env.MONGOMS_MAX_RETRIES ??= '1'; // a failing download should not retry for a minute
  try {
    return opts.detached
      ? await startKeeper(opts.stateDir, source.systemBinary, false)
      : await startReplSetHere(opts.stateDir, source.systemBinary);
  } catch (error) {
    if (required) throw new Error(`MONGO_KIND=mongod, but mongodb-memory-server failed: ${firstLine(error)}`);
    log(`mongodb-memory-server failed (${firstLine(error)}); using the mongo-java-server stand-in`);
    return undefined;
  }
}

interface ReplSetHandle {
  uri: string;
  mongodPid(): number | undefined;
  stop(keepData: boolean): Promise<void>;
  start(): Promise<void>;
}

async function createReplSet(
  stateDir: string,
  systemBinary: string | undefined,
  port: number,
  keepData: boolean,
): Promise<ReplSetHandle> {
  const { MongoMemoryReplSet } = await import('mongodb-memory-server');
  const dbPath = path.join(stateDir, 'mongo-data');
  if (!keepData) fs.rmSync(dbPath, { recursive: true, force: true });
  fs.mkdirSync(dbPath, { recursive: true });
  const replSet = await MongoMemoryReplSet.create({
    replSet: { count: 1, storageEngine: 'wiredTiger' },
    instanceOpts: [
      {
        port,
        dbPath,
        storageEngine: 'wiredTiger',
        args: ['--setParameter', `transactionLifetimeLimitSeconds=${TEST_TRANSACTION_LIFETIME_SECONDS}`],
      },
    ],
    binary: systemBinary ? { systemBinary } : {},
  });
  return {
    uri: replSet.getUri(),
    mongodPid: () => replSet.servers[0]?.instanceInfo?.instance.mongodProcess?.pid,
    stop: async (keep) => {
      await replSet.stop({ doCleanup: !keep, force: false });
    },
    start: () => replSet.start(),
  };
}

/** A replica set with authentication on, for tests of MongoDB privileges; stopped (and removed) by stop(). */
export interface AuthenticatedReplSet {
  /** The root user's connection string. */
  rootUri: string;
  /** The connection string of `user` (authSource admin). */
  uriFor(user: string, password: string): string;
  stop(): Promise<void>;
}

/**
 * A one-member mongod replica set with authentication (a keyfile and a root user), in a directory of
 * its own. Throws when no mongod can be had (the stand-in has no authentication at all).
 */
export async function startAuthenticatedReplSet(root: {
  user: string;
  password: string;
}): Promise<AuthenticatedReplSet> {
  const source = await locateMongod();
  if ('unavailable' in source)
    throw new Error(`no mongod for an authenticated replica set: ${source.unavailable}`);
  const { MongoMemoryReplSet } = await import('mongodb-memory-server');
  const replSet = await MongoMemoryReplSet.create({
    replSet: {
      count: 1,
      storageEngine: 'wiredTiger',
      auth: { enable: true, customRootName: root.user, customRootPwd: root.password },
    },
    instanceOpts: [{ port: await freePort(), storageEngine: 'wiredTiger' }],
    binary: source.systemBinary ? { systemBinary: source.systemBinary } : {},
  });
  const uriFor = (user: string, password: string): string => {
    const url = new URL(replSet.getUri());
    url.username = encodeURIComponent(user);
    url.password = encodeURIComponent(password);
    url.searchParams.set('authSource', 'admin');
    return url.toString();
  };
  return {
    rootUri: uriFor(root.user, root.password),
    uriFor,
    stop: async () => {
      await replSet.stop({ doCleanup: true, force: true });
    },
  };
}

async function startReplSetHere(stateDir: string, systemBinary: string | undefined): Promise<MongoService> {
  const handle = await createReplSet(stateDir, systemBinary, await freePort(), false);
  await proveReady(handle.uri);
  killOnExit(handle.mongodPid());
  let running = true;
  const service: MongoService = {
    uri: handle.uri,
    kind: 'mongodb-memory-server',
    description: 'mongod 1-member replica set (mongodb-memory-server, wiredTiger)',
    capabilities: MEMORY_SERVER_CAPABILITIES,
    pid: handle.mongodPid(),
    stop: async () => {
      if (!running) return;
      running = false;
      const pid = handle.mongodPid();
      await handle.stop(false);
      exitKills.delete(pid ?? -1);
      forgetState(stateDir, pid);
    },
    restart: async () => {
      const before = handle.mongodPid();
      await handle.stop(true);
      await handle.start();
      await proveReady(handle.uri);
      exitKills.delete(before ?? -1);
      killOnExit(handle.mongodPid());
      service.pid = handle.mongodPid();
      replaceState(stateDir, before, service, { marker: 'mongod' });
    },
  };
  stateExtras.set(service, { marker: 'mongod' });
  return service;
}

/** detached: a node process of its own (this file with --keeper) holds the replica set and outlives us. */
async function startKeeper(
  stateDir: string,
  systemBinary: string | undefined,
  keepData: boolean,
  port?: number,
): Promise<MongoService> {
  const keeperFile = path.join(stateDir, KEEPER_FILE);
  fs.rmSync(keeperFile, { force: true });
  const chosenPort = port ?? (await freePort());
  const logFd = fs.openSync(path.join(stateDir, 'mongo-keeper.log'), 'a');
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--keeper', stateDir, String(chosenPort)];
  if (keepData) args.push('--keep-data');
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: systemBinary ? { ...process.env, MONGOMS_SYSTEM_BINARY: systemBinary } : process.env,
  });
  fs.closeSync(logFd);
  child.unref();
  const keeperPid = child.pid;
  if (keeperPid === undefined) throw new Error('could not start the mongodb-memory-server keeper');
  const info = await waitFor(
    () => readJson<{ uri: string; mongodPid?: number }>(keeperFile),
    180_000,
    () => !isAlive(keeperPid),
    'mongodb-memory-server keeper',
  );
  await proveReady(info.uri);
  const service: MongoService = {
    uri: info.uri,
    kind: 'mongodb-memory-server',
    description: 'mongod 1-member replica set (mongodb-memory-server, wiredTiger, detached keeper)',
    capabilities: MEMORY_SERVER_CAPABILITIES,
    pid: keeperPid,
    stop: async () => {
      await stopPid(keeperPid, '--keeper', 30_000);
      forgetState(stateDir, keeperPid);
    },
    restart: async () => {
      await stopPid(keeperPid, '--keeper', 30_000);
      const again = await startKeeper(stateDir, systemBinary, true, chosenPort);
      Object.assign(service, { pid: again.pid, stop: again.stop, restart: again.restart });
      replaceState(stateDir, keeperPid, service, stateExtras.get(again));
    },
  };
  stateExtras.set(service, { marker: '--keeper', mongodPid: info.mongodPid });
  return service;
}

/** The keeper process: start the replica set, publish its uri, stop it on SIGTERM/SIGINT. */
async function runKeeper(stateDir: string, port: number, keepData: boolean): Promise<void> {
  const handle = await createReplSet(stateDir, process.env.MONGOMS_SYSTEM_BINARY, port, keepData);
  const shutdown = async () => {
    // Keep the files: a restart() brings the same data back; startMongo() wipes them for a fresh start.
    await handle.stop(true).catch(() => undefined);
    fs.rmSync(path.join(stateDir, KEEPER_FILE), { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  fs.writeFileSync(
    path.join(stateDir, KEEPER_FILE),
    JSON.stringify({ uri: handle.uri, mongodPid: handle.mongodPid() }),
  );
  setInterval(() => undefined, 1 << 30); // stay alive until signalled
}

// ----------------------------------------------------------------------------------------- mongo-java-server

async function startStandIn(opts: StartMongoOptions, log: (line: string) => void): Promise<MongoService> {
  requireTool(
    'java',
    ['-version'],
    'java not found: install a JDK 17 (needed for the mongo-java-server stand-in)',
  );
  const jar = await buildStandIn(log);
  const detached = opts.detached === true;
  const standIn = opts.standIn ?? {};
  let current = await launchStandIn(jar, opts.stateDir, 0, detached, standIn);
  const uri = `mongodb://127.0.0.1:${current.port}/`;
  const transactions = standIn.transactions
    ? 'transactions: change events only, no isolation'
    : 'no transactions';
  const service: MongoService = {
    uri,
    kind: 'mongo-java-server',
    description: `mongo-java-server ${current.version} stand-in (launcher: scripts/mongo-java-server; ${transactions}, data in memory only)`,
    capabilities: { ...STAND_IN_CAPABILITIES, transactionEvents: standIn.transactions === true },
    pid: current.pid,
    stop: async () => {
      await stopPid(current.pid, STAND_IN_JAR);
      forgetState(opts.stateDir, current.pid);
    },
    restart: async () => {
      const before = current.pid;
      await stopPid(before, STAND_IN_JAR);
      current = await launchStandIn(jar, opts.stateDir, current.port, detached, standIn);
      service.pid = current.pid;
      replaceState(opts.stateDir, before, service, { marker: STAND_IN_JAR });
    },
  };
  stateExtras.set(service, { marker: STAND_IN_JAR });
  return service;
}

interface StandInProcess {
  pid: number;
  port: number;
  version: string;
}

async function launchStandIn(
  jar: string,
  stateDir: string,
  port: number,
  detached: boolean,
  standIn: StandInOptions,
): Promise<StandInProcess> {
  const portFile = path.join(stateDir, 'mongo-java-server.port');
  fs.rmSync(portFile, { force: true });
  const args = ['-Xmx1g', '-Xss512k', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-jar', jar];
  args.push('--port', String(port), '--port-file', portFile);
  const cap = standIn.oplogMaxEntries ?? process.env[OPLOG_CAP_ENV];
  if (cap) args.push('--oplog-max-entries', String(cap));
  const sizeMb = standIn.oplogSizeMb ?? process.env[OPLOG_SIZE_ENV];
  if (sizeMb) args.push('--oplog-size-mb', String(sizeMb));
  if (standIn.transactions) args.push('--transactions');
  if (standIn.noopIntervalSeconds) args.push('--noop-interval-seconds', String(standIn.noopIntervalSeconds));
  args.push('--transaction-lifetime-seconds', String(TEST_TRANSACTION_LIFETIME_SECONDS));
  let output = '';
  let child: ChildProcess;
  if (detached) {
    const logFd = fs.openSync(path.join(stateDir, 'mongo-java-server.log'), 'a');
    child = spawn('java', args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', logFd, logFd] });
    fs.closeSync(logFd);
  } else {
    // --exit-with-stdin: if this process dies, even by SIGKILL, the pipe closes and the server exits with it.
    child = spawn('java', [...args, '--exit-with-stdin'], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
      if (stream instanceof net.Socket) stream.unref();
    }
    if (child.stdin instanceof net.Socket) child.stdin.unref();
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start java');
  if (!detached) killOnExit(pid);
  const boundPort = await waitFor(
    () => (fs.existsSync(portFile) ? Number(fs.readFileSync(portFile, 'utf8')) : undefined),
    60_000,
    () => child.exitCode !== null || !isAlive(pid),
    `mongo-java-server stand-in${output ? `: ${output.trim()}` : ''}`,
  );
  await proveReady(`mongodb://127.0.0.1:${boundPort}/`);
  const version =
    /<mongo-java-server.version>([^<]+)</.exec(
      fs.readFileSync(path.join(STAND_IN_DIR, 'pom.xml'), 'utf8'),
    )?.[1] ?? '?';
  return { pid, port: boundPort, version };
}

/** Builds the launcher with Maven once; rebuilds only when pom.xml or src/ changed (content hash). */
async function buildStandIn(log: (line: string) => void): Promise<string> {
  const stampFile = path.join(BUILD_CACHE, 'build-stamp');
  const hash = sourceHash();
  const upToDate = () =>
    fs.existsSync(STAND_IN_JAR) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === hash;
  if (upToDate()) return STAND_IN_JAR;
  requireTool(
    'mvn',
    ['-v'],
    'mvn not found: install Maven 3.8+ (it builds the mongo-java-server stand-in once)',
  );
  await withLock(path.join(BUILD_CACHE, 'build.lock'), async () => {
    if (upToDate()) return; // another process built it while we waited
    log('Building the mongo-java-server stand-in with Maven (once)...');
    const result = await run('mvn', ['-q', '-B', '-f', path.join(STAND_IN_DIR, 'pom.xml'), 'package']);
    if (result.code !== 0)
      throw new Error(`building the mongo-java-server stand-in failed:\n${result.output.slice(-3000)}`);
    fs.writeFileSync(stampFile, hash);
  });
  return STAND_IN_JAR;
}

function sourceHash(): string {
  const hash = createHash('sha256');
  const files = [path.join(STAND_IN_DIR, 'pom.xml'), ...listFiles(path.join(STAND_IN_DIR, 'src'))].sort();
  for (const file of files)
    hash.update(path.relative(STAND_IN_DIR, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  return hash.digest('hex');
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full) : [full];
  });
}

// -------------------------------------------------------------------------------------------------- helpers

/** State that only the process that started a service knows (marker, keeper's mongod) for mongo.json. */
const stateExtras = new WeakMap<MongoService, Pick<MongoState, 'marker' | 'mongodPid'>>();

function writeState(
  stateDir: string,
  service: MongoService,
  extras: Pick<MongoState, 'marker' | 'mongodPid'> | undefined,
): void {
  const state: MongoState = {
    kind: service.kind,
    uri: service.uri,
    description: service.description,
    capabilities: service.capabilities,
    pid: service.pid,
    ...extras,
  };
  fs.writeFileSync(path.join(stateDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

/** After a restart: update mongo.json if it recorded the old process (and not someone else's server). */
function replaceState(
  stateDir: string,
  oldPid: number | undefined,
  service: MongoService,
  extras: Pick<MongoState, 'marker' | 'mongodPid'> | undefined,
): void {
  if (readJson<MongoState>(path.join(stateDir, STATE_FILE))?.pid === oldPid)
    writeState(stateDir, service, extras);
}

/** Removes mongo.json if it records this pid (not if it records a detached server started by others). */
function forgetState(stateDir: string, pid: number | undefined): void {
  const file = path.join(stateDir, STATE_FILE);
  if (readJson<MongoState>(file)?.pid === pid) fs.rmSync(file, { force: true });
}

/** Readiness is a round trip: a ping and an opened change stream, retried until the deadline. */
async function proveReady(uri: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
    try {
      await client.db('admin').command({ ping: 1 });
      const stream = client.db('mongo_kafka_relay_probe').watch([], { maxAwaitTimeMS: 50 });
      await stream.tryNext();
      await stream.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`MongoDB at ${uri} not ready: ${firstLine(error)}`);
      await sleep(200);
    } finally {
      await client.close();
    }
  }
}

const exitKills = new Set<number>();
function killOnExit(pid: number | undefined): void {
  if (pid === undefined) return;
  if (exitKills.size === 0) {
    process.on('exit', () => {
      for (const p of exitKills) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  exitKills.add(pid);
}

/** SIGTERM, wait, then SIGKILL; only if the pid still runs the command we started (pids are reused). */
async function stopPid(pid: number, marker: string | undefined, graceMs = 10_000): Promise<void> {
  exitKills.delete(pid);
  if (!isAlive(pid) || (marker !== undefined && !commandLineOf(pid).includes(marker))) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(20);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie (exited, not yet reaped by its parent) still answers signal 0.
    return !/\) Z /.test(readOr(`/proc/${pid}/stat`, ''));
  } catch {
    return false;
  }
}

function commandLineOf(pid: number): string {
  // /proc exists on Linux (our machines); elsewhere the pid is trusted as recorded.
  return fs.existsSync('/proc') ? readOr(`/proc/${pid}/cmdline`, '').replace(/\0/g, ' ') : String(pid);
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function waitFor<T>(
  probe: () => T | undefined,
  timeoutMs: number,
  failed: () => boolean,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (failed()) throw new Error(`${what} exited before it was ready`);
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function requireTool(command: string, args: string[], message: string): void {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  if (result.error) throw new Error(message);
}

async function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/** A directory as a lock between processes (mkdir is atomic); a lock older than 10 minutes is stale. */
async function withLock(lockDir: string, body: () => Promise<void>): Promise<void> {
  fs.mkdirSync(path.dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 10 * 60_000) fs.rmSync(lockDir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
      await sleep(250);
    }
  }
  try {
    await body();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

// `node --import tsx scripts/services/mongo.ts --keeper <stateDir> <port> [--keep-data]`
if (
  process.argv[1] &&
  import.meta.url === pathToFileURL(process.argv[1]).href &&
  process.argv[2] === '--keeper'
) {
  const [stateDir, port] = [process.argv[3], Number(process.argv[4])];
  if (!stateDir || !Number.isInteger(port))
    throw new Error('usage: mongo.ts --keeper <stateDir> <port> [--keep-data]');
  await runKeeper(stateDir, port, process.argv.includes('--keep-data'));
}
