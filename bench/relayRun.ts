/**
 * (c) The relay as operators run it (compiled, `node .../src/cli/main.js start`, configured by environment),
 * relaying a pre-written backlog: the start position is taken before the backlog is written and given as
 * RELAY_START_AFTER_TOKEN, with a fresh RELAY_CHECKPOINT_ID, so the relay reads exactly the N backlog events.
 * Throughput is measured while events flow (startup — process, connections, topic creation — excluded)
 * from the relay's own "checkpoint progress" log lines, one every 1,000 events with its clock to the
 * millisecond; RSS, CPU time and heap come from /metrics, scraped every 500 ms (a scrape costs the relay
 * 1-2 ms of CPU for prom-client's default metrics: scraping every 100 ms took ~10% of its main thread).
 *
 * BENCH_RELAY_ROOT=<dir> runs the relay from another checkout (e.g. a scratch copy with a proposed fix).
 * The relay runs compiled, as the image runs it (`node <root>/.cache/bench-build/src/cli/main.js`, built
 * by buildRelay() at the start of the bench); BENCH_RELAY_TSX=1 runs the sources through tsx instead
 * (tsx adds ~30-50 MB of RSS and startup time, nothing per event).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MongoClient } from 'mongodb';
import {
  MetricsSampler,
  benchCollection,
  currentToken,
  insertBacklog,
  onCleanup,
  round,
  rssFigures,
  sleep,
  uniqueName,
  updateBacklog,
  BENCH_DB,
  type RssFigures,
  type Sample,
  type ServerPids,
} from './support.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

export function relayRoot(): string {
  return path.resolve(process.env.BENCH_RELAY_ROOT ?? REPO_ROOT);
}

/** The relay's entry point: the compiled build (default) or the sources through tsx (BENCH_RELAY_TSX=1). */
export function relayEntry(): string[] {
  const main = relayFile('cli/main');
  return process.env.BENCH_RELAY_TSX === '1' ? ['--import', 'tsx', main] : [main];
}

/**
 * NODE_OPTIONS of the relay process: BENCH_RELAY_NODE_OPTIONS if set, else what the image's runtime
 * stage sets (`ENV NODE_OPTIONS=...` in <root>/Dockerfile), so the bench measures what the image runs.
 */
export function relayNodeOptions(): string {
  if (process.env.BENCH_RELAY_NODE_OPTIONS !== undefined) return process.env.BENCH_RELAY_NODE_OPTIONS;
  let dockerfile = '';
  try {
    dockerfile = readFileSync(path.join(relayRoot(), 'Dockerfile'), 'utf8');
  } catch {
    return '';
  }
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const m = /^ENV\s+NODE_OPTIONS[=\s]+("?)(.*?)\1\s*$/m.exec(runtime);
  return m?.[2] ?? '';
}

/** Where the bench compiles the relay (tsconfig.build.json, as the image's build stage does). */
const COMPILED_DIR = '.cache/bench-build';

/**
 * `src/<relative>.ts` as the bench runs it: from the compiled build (as the image ships it: no tsx
 * transform, whose name-keeping helpers cost a trivial handler's path ~5 %), or the source with
 * BENCH_RELAY_TSX=1.
 */
function relayFile(relative: string): string {
  const root = relayRoot();
  const file =
    process.env.BENCH_RELAY_TSX === '1'
      ? path.join(root, 'src', `${relative}.ts`)
      : path.join(root, COMPILED_DIR, 'src', `${relative}.js`);
  if (!existsSync(file)) throw new Error(`${file} does not exist: call buildRelay() first`);
  return file;
}

/** The URL to import `src/<relative>.ts` from, as the bench measures it (see relayFile). */
export function relayModuleUrl(relative: string): string {
  return pathToFileURL(relayFile(relative)).href;
}

/**
 * Compiles the relay under test into <root>/.cache/bench-build (inside the checkout, so its imports
 * resolve to the checkout's node_modules). Skipped with BENCH_RELAY_TSX=1.
 */
export async function buildRelay(): Promise<void> {
  if (process.env.BENCH_RELAY_TSX === '1') return;
  const root = relayRoot();
  const out = path.join(root, COMPILED_DIR);
  await rm(out, { recursive: true, force: true });
  const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  const child = spawn(
    process.execPath,
    [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', out],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`compiling the relay failed (tsc exit ${code}):\n${output.slice(-2000)}`);
}

export type { CheckpointMode } from '../src/config/schema.js';
import type { CheckpointMode } from '../src/config/schema.js';

export interface BenchContext extends ServerPids {
  client: MongoClient;
  mongoUri: string;
  brokers: string;
}

export interface RelayHandle {
  readonly child: ChildProcess;
  readonly port: number;
  /** performance.now() at spawn. */
  readonly spawnedAt: number;
  readonly exited: Promise<number>;
  /** Log lines at level error or above. */
  readonly errors: string[];
  /**
   * The relay's own "checkpoint progress" log lines (every RELAY_PROGRESS_LOG_EVERY events): when
   * (epoch ms, the relay's clock) how many events it had published. Throughput is read from these,
   * so the bench does not have to scrape /metrics often (a scrape costs the relay real CPU).
   */
  readonly progress: { at: number; published: number }[];
  tail(): string;
  /** SIGTERM (graceful: drains, writes the last checkpoint, writes a --cpu-prof profile), SIGKILL after 40 s. */
  stop(): Promise<number>;
}

/** Inherited variables that would change the relay's configuration are dropped; the bench sets its own. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(RELAY_|KAFKA_|METRICS_)/.test(key) || key === 'MONGODB_URI' || key === 'LOG_LEVEL')
      delete env[key];
  }
  return env;
}

export interface RelaySettings {
  ctx: BenchContext;
  /** db.coll */
  watch: string;
  mode: CheckpointMode;
  startAfterToken: string;
  /** Default: a fresh one. Give the same one to restart a relay where the previous one stopped. */
  checkpointId?: string;
  brokers?: string;
  extra?: Record<string, string>;
  cpuProfDir?: string;
}

export async function spawnRelay(s: RelaySettings): Promise<RelayHandle> {
  const root = relayRoot();
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    MONGODB_URI: s.ctx.mongoUri,
    KAFKA_BROKERS: s.brokers ?? s.ctx.brokers,
    RELAY_WATCH: s.watch,
    RELAY_CHECKPOINT_MODE: s.mode,
    RELAY_CHECKPOINT_ID: s.checkpointId ?? uniqueName('bench'),
    RELAY_START_AFTER_TOKEN: s.startAfterToken,
    RELAY_SHUTDOWN_TIMEOUT_MS: '15000',
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    NODE_OPTIONS: relayNodeOptions(),
    ...s.extra,
  };
  const nodeArgs = s.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${s.cpuProfDir}`] : [];
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, ...relayEntry(), 'start'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const unregister = onCleanup(`relay pid ${child.pid}`, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => {
      unregister();
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
    }),
  );
  const lines: string[] = [];
  const errors: string[] = [];
  const progress: { at: number; published: number }[] = [];
  let port = 0;
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (lines.length > 40) lines.shift();
      try {
        const log = JSON.parse(line) as {
          level?: number;
          msg?: string;
          metrics?: string;
          time?: string;
          published?: number;
        };
        if (log.msg === 'configuration loaded' && log.metrics) port = Number(new URL(log.metrics).port);
        if (log.msg === 'checkpoint progress' && log.time && typeof log.published === 'number')
          progress.push({ at: Date.parse(log.time), published: log.published });
        if ((log.level ?? 0) >= 50 && errors.length < 20) errors.push(line.slice(0, 500));
      } catch {
        // not JSON
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    lines.push(`stderr: ${d.toString().trim()}`);
    if (lines.length > 40) lines.shift();
  });
  const tail = (): string => lines.slice(-12).join('\n');
  const stop = async (): Promise<number> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const deadline = performance.now() + 60_000;
  while (port === 0) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the relay exited during startup:\n${tail()}`);
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`the relay did not report its metrics port within 60 s:\n${tail()}`);
    }
    await sleep(20);
  }
  return { child, port, spawnedAt, exited, errors, progress, tail, stop };
}

/** Waits for /readyz 200: change stream open, Kafka connected, lease held. */
export async function waitReady(relay: RelayHandle, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${relay.port}/readyz`, {
      signal: AbortSignal.timeout(2000),
    }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (relay.child.exitCode !== null)
      throw new Error(`the relay exited before it was ready:\n${relay.tail()}`);
    if (performance.now() > deadline)
      throw new Error(`the relay was not ready within ${timeoutMs} ms:\n${relay.tail()}`);
    await sleep(100);
  }
}

export interface BacklogRunResult {
  mode: CheckpointMode;
  size: number;
  n: number;
  /** Events/s between the first and the last acknowledged event. */
  rate: number;
  seconds: number;
  /** Spawn to the first acknowledged event (process start, tsx, connections, lease, topic creation). */
  startupS: number;
  /** Rate over the second half of the events (JIT warm; the first half includes warm-up). */
  secondHalfRate: number;
  checkpointWrites: number;
  /** Relay CPU time (process_cpu_seconds_total) per event in the window, µs. */
  cpuUsPerEvent: number;
  /** Relay CPU seconds per wall second in the window (1 = one core busy). */
  cpuCores: number;
  /**
   * CPU µs per event in the same window of the Kafka broker and of MongoDB (NaN when their pids are
   * unknown), and of all three: on one machine they share the cores, so cores × 1e6 / machine µs is
   * the most any relay could reach here.
   */
  serverCpuUsPerEvent: { kafka: number; mongo: number };
  machineCpuUsPerEvent: number;
  machineCeilingPerS: number;
  rss: RssFigures;
  exitCode: number;
  /** CLOCK_MONOTONIC µs of the measured window (to cut a CPU profile to it). */
  window: { startUs: number; endUs: number };
  errors: string[];
  samples: Sample[];
}

/**
 * The backlog: `insert` is n inserts of `size`-byte documents; `insert-update` (the anchors' shape) is
 * n/2 inserts followed by one update of each, so half the events need their full document looked up
 * (RELAY_FULL_DOCUMENT=updateLookup, the default).
 */
export type Workload = 'insert' | 'insert-update';

export async function relayBacklogRun(
  ctx: BenchContext,
  o: {
    mode: CheckpointMode;
    size: number;
    n: number;
    workload?: Workload;
    cpuProfDir?: string;
    sampleMs?: number;
    timeoutMs?: number;
    /** More relay environment (experiments: RELAY_* knobs, NODE_OPTIONS). */
    extra?: Record<string, string>;
  },
): Promise<BacklogRunResult> {
  const collName = uniqueName(`relay_${o.mode}_${o.size}`);
  const coll = benchCollection(ctx.client, collName);
  const token = await currentToken(coll);
  if (o.workload === 'insert-update') {
    await insertBacklog(coll, o.size, Math.ceil(o.n / 2));
    await updateBacklog(coll, Math.floor(o.n / 2));
  } else await insertBacklog(coll, o.size, o.n);
  const relay = await spawnRelay({
    ctx,
    watch: `${BENCH_DB}.${collName}`,
    mode: o.mode,
    startAfterToken: token._data,
    cpuProfDir: o.cpuProfDir,
    extra: o.extra,
  });
  const sampler = new MetricsSampler(relay.port, o.sampleMs ?? 500, ctx).start();
  try {
    const done = sampler.waitFor(
      (s) => s.events >= o.n,
      o.timeoutMs ?? 180_000,
      `${o.n} events acknowledged`,
    );
    const exitedEarly = relay.exited.then((code) => {
      throw new Error(`the relay exited (code ${code}) before relaying the backlog:\n${relay.tail()}`);
    });
    const last = await Promise.race([done, exitedEarly]);
    // CPU, RSS and the profile window come from scrapes made while events were flowing: the first that
    // saw any acknowledged event, and the last that saw fewer than N (the scrape that sees N may come up
    // to one interval after the end). Short windows fall back to the final scrape.
    const first = sampler.samples.find((s) => s.events > 0)!;
    const inFlow = sampler.samples.filter((s) => s.events < o.n).at(-1);
    const end = inFlow && inFlow.at - first.at >= 500 ? inFlow : last;
    const events = end.events - first.events;
    const seconds = (end.at - first.at) / 1000;
    const checkpointWrites = last.checkpointWrites;
    // The rate comes from the relay's own progress lines where there are enough of them (their clock is
    // the relay's, to the millisecond), else from the scrapes.
    const rateFrom = (
      points: { at: number; n: number }[],
    ): { rate: number; secondHalf: number; s: number } => {
      const a = points[0]!;
      const z = points.at(-1)!;
      const mid = points.find((p) => p.n >= a.n + (z.n - a.n) / 2) ?? a;
      return {
        rate: (z.n - a.n) / ((z.at - a.at) / 1000),
        secondHalf: z.at > mid.at ? (z.n - mid.n) / ((z.at - mid.at) / 1000) : NaN,
        s: (z.at - a.at) / 1000,
      };
    };
    const progress = relay.progress
      .filter((p) => p.published < o.n)
      .map((p) => ({ at: p.at, n: p.published }));
    const measured =
      progress.length >= 3 && progress.at(-1)!.n - progress[0]!.n >= o.n / 3
        ? rateFrom(progress)
        : rateFrom(
            sampler.samples
              .filter((x) => x.at >= first.at && x.at <= end.at)
              .map((x) => ({ at: x.at, n: x.events })),
          );
    const cpu = end.cpuSeconds - first.cpuSeconds;
    const perEvent = (seconds: number): number => (events > 0 ? round((seconds * 1e6) / events, 1) : NaN);
    const kafka = perEvent(end.kafkaCpuSeconds - first.kafkaCpuSeconds);
    const mongo = perEvent(end.mongoCpuSeconds - first.mongoCpuSeconds);
    const machine = round(perEvent(cpu) + kafka + mongo, 1);
    await sampler.stop();
    const exitCode = await relay.stop();
    return {
      mode: o.mode,
      size: o.size,
      n: o.n,
      rate: round(measured.rate, 0),
      seconds: round(measured.s, 3),
      secondHalfRate: round(measured.secondHalf, 0),
      cpuUsPerEvent: events > 0 ? round((cpu * 1e6) / events, 1) : NaN,
      cpuCores: seconds > 0 ? round(cpu / seconds, 2) : NaN,
      serverCpuUsPerEvent: { kafka, mongo },
      machineCpuUsPerEvent: machine,
      machineCeilingPerS: round((os.cpus().length * 1e6) / machine, 0),
      startupS: round((first.at - relay.spawnedAt) / 1000, 2),
      checkpointWrites,
      rss: rssFigures(sampler.samples),
      exitCode,
      window: { startUs: first.monoUs, endUs: end.monoUs },
      errors: relay.errors,
      samples: sampler.samples,
    };
  } finally {
    await sampler.stop();
    await relay.stop();
    // The stand-in keeps every document in its Java heap: without this, the later phases (the anchors'
    // above all) ran against a server busy collecting garbage.
    await coll.drop().catch(() => undefined);
  }
}

/**
 * The .cpuprofile files a `--cpu-prof` relay left in `dir`, one per thread: node names them
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, thread 0 being the main thread.
 */
export async function findCpuProfiles(dir: string): Promise<{ thread: string; file: string }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  return files
    .map((f) => ({ f, tid: Number(f.split('.').at(-3)) }))
    .sort((a, b) => a.tid - b.tid)
    .map(({ f, tid }) => ({ thread: tid === 0 ? 'main' : `worker ${tid}`, file: path.join(dir, f) }));
}
