/**
 * The relay as a separate process, the way operators run it: spawned from the CLI entry with an
 * environment, its JSON log lines parsed so tests can wait for lifecycle steps, and killed with the
 * signal a scenario needs (SIGKILL for crashes, SIGTERM for graceful stops).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { waitFor } from './wait.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO_ROOT, 'src/cli/main.ts');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly stdout: string[];
  readonly stderr: string[];
  /** The port the relay's metrics server bound (METRICS_PORT=0 unless the test chose one); 0 until it logged it. */
  readonly metricsPort: number;
  /** Resolves with the exit code (or 128+signal). */
  readonly exited: Promise<number>;
  waitForLog(predicate: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  kill(signal: NodeJS.Signals): Promise<number>;
  metrics(): Promise<string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * The metrics endpoint of every relay a test starts: loopback and any free port (never the default 9464,
 * which another process on the machine may hold). A test may still pass its own.
 */
const METRICS_DEFAULTS = { METRICS_HOST: '127.0.0.1', METRICS_PORT: '0' };

/** Runs `mongo-kafka-relay <args>` and collects its output until it exits. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...METRICS_DEFAULTS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number>((resolve) =>
    child.on('exit', (c, s) => resolve(c ?? 128 + (s === 'SIGKILL' ? 9 : 15))),
  );
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts `mongo-kafka-relay start` with `env` on top of the services' variables. */
export async function startRelay(
  env: Record<string, string | undefined>,
  args: string[] = [],
): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...(args.length ? args : ['start'])], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), LOG_LEVEL: 'info', ...METRICS_DEFAULTS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let metricsPort = Number(env.METRICS_PORT ?? 0);
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      stdout.push(line);
      try {
        const entry = JSON.parse(line) as LogLine;
        logs.push(entry);
        // "configuration loaded" names the endpoint the relay bound: http://host:port/metrics
        const bound = typeof entry.metrics === 'string' ? /:(\d+)\/metrics$/.exec(entry.metrics) : null;
        if (bound) metricsPort = Number(bound[1]);
      } catch {
        // not a log line (e.g. CLI output)
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) =>
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1)),
    ),
  );
  running.add(child);
  void exited.then(() => running.delete(child));
  const relay: RelayProcess = {
    child,
    logs,
    stdout,
    stderr,
    get metricsPort() {
      return metricsPort;
    },
    exited,
    waitForLog: (predicate, timeoutMs = 30_000, what = 'a log line') =>
      waitFor(() => logs.find(predicate), {
        timeoutMs,
        message: () =>
          `${what}; stderr: ${stderr.join('').slice(-2000)}; last logs: ${stdout.slice(-5).join('\n')}`,
      }),
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    metrics: async () => {
      await waitFor(() => metricsPort > 0, {
        timeoutMs: 60_000,
        message: 'the relay to log its metrics port',
      });
      return (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    },
  };
  live.add(relay);
  void exited.then(() => live.delete(relay));
  return relay;
}

/** Waits until the relay's change stream is open and it is ready to publish. */
export async function startRelayReady(env: Record<string, string | undefined>): Promise<RelayProcess> {
  const relay = await startRelay(env);
  await relay.waitForLog((l) => l.msg === 'change stream open', 60_000, 'the change stream to open');
  expect(relay.metricsPort, 'the metrics port named in "configuration loaded"').to.be.greaterThan(0);
  await waitFor(
    async () =>
      (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`).catch(() => null))?.status === 200,
    {
      timeoutMs: 30_000,
      message: 'the relay to report ready',
    },
  );
  return relay;
}

const running = new Set<ChildProcess>();
const live = new Set<RelayProcess>();

/** Relays started by this test process that are still running. */
export function runningRelays(): RelayProcess[] {
  return [...live];
}

/** Kill every relay a test left running (called from an afterEach in the relay tests). */
export async function killAllRelays(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** The relay reads its settings from the environment; keep the test runner's unrelated RELAY_* out. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('RELAY_')) delete env[key];
  return env;
}

/** Parse a Prometheus text exposition into name{labels} -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export function sumMetric(metrics: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [k, v] of metrics) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}
