/**
 * Shared bookkeeping for the local services (Kafka, MongoDB): where their files live, pid files,
 * "is this pid still our process", stopping by recorded pid, and the `.services/env` file.
 *
 * Rule kept everywhere: a process is only ever signalled through a pid WE recorded, and only
 * after checking its command line still looks like the process we started (pids get reused).
 * Nothing here ever looks processes up by name.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * Runtime state of `npm run services:up` and of test runs (gitignored). RELAY_SERVICES_DIR moves it,
 * e.g. for a second set of services beside a developer's (the services CLI test does so).
 */
export const SERVICES_DIR = process.env.RELAY_SERVICES_DIR
  ? path.resolve(process.env.RELAY_SERVICES_DIR)
  : path.join(REPO_ROOT, '.services');
/** Shell-sourceable `KAFKA_BROKERS=...` / `MONGODB_URI=...` written by `services:up`. */
export const ENV_FILE = path.join(SERVICES_DIR, 'env');
/** What `services:up` started, so `services:down` stops exactly that. */
export const STATE_FILE = path.join(SERVICES_DIR, 'state.json');

export interface ServicesState {
  startedAt: string;
  /** `nodes` is set for a cluster (KAFKA_BROKER_COUNT > 1): its pids live in <dataDir>/node-<id>/kafka.pid. */
  kafka?: { dataDir: string; pid: number; brokers: string; version: string; nodes?: number };
  mongo?: { stateDir: string; pid?: number; uri: string; kind: string; description: string };
}

/** Thrown for a missing tool (java, mvn): the CLI prints just the message and exits non-zero. */
export class PrerequisiteError extends Error {
  override name = 'PrerequisiteError';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function readPidFile(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export async function writePidFile(file: string, pid: number): Promise<void> {
  await writeFile(file, `${pid}\n`);
}

/** The process's argv joined by spaces, or undefined if it is gone. Linux /proc only. */
export function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * True while the process exists and is not a zombie. Zombies count as gone: inside containers
 * pid 1 does not always reap re-parented (detached) children, and kill(pid, 0) succeeds on them.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — comm may contain spaces, so split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** `pid` is alive and its command line contains every marker (guards against pid reuse). */
export function isOurProcess(pid: number, markers: string[]): boolean {
  const cmd = cmdlineOf(pid);
  return cmd !== undefined && isAlive(pid) && markers.every((m) => cmd.includes(m));
}

export async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * SIGTERM, wait up to `graceMs` for a clean exit (Kafka flushes and closes its logs), then
 * SIGKILL and wait again. Does nothing unless the pid still matches `markers`.
 */
export async function terminate(pid: number, markers: string[], graceMs = 30_000): Promise<void> {
  if (!isOurProcess(pid, markers)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // exited in between
  }
  if (await waitUntilGone(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await waitUntilGone(pid, 10_000))) throw new Error(`pid ${pid} survived SIGKILL`);
}

// ---- never leave a non-detached server behind ------------------------------------------------

const guarded = new Set<ChildProcess>();
let guardInstalled = false;

function killGuarded(): void {
  for (const child of guarded) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * Kills `child` with SIGKILL when this Node process exits — normally (mocha --exit calls
 * process.exit) or through SIGINT/SIGTERM/SIGHUP, which would otherwise end Node without running
 * 'exit' handlers. After killing, a signal is re-raised if nobody else handles it, so the default
 * behaviour (terminate) is kept. A SIGKILL of Node itself cannot be caught: that is the one case
 * where a child survives.
 */
export function killOnExit(child: ChildProcess): void {
  guarded.add(child);
  child.once('exit', () => guarded.delete(child));
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('exit', killGuarded);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killGuarded();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

// ---- .services/state.json and .services/env --------------------------------------------------

export async function readState(): Promise<ServicesState | undefined> {
  try {
    return JSON.parse(await readFile(STATE_FILE, 'utf8')) as ServicesState;
  } catch {
    return undefined;
  }
}

export async function writeState(state: ServicesState): Promise<void> {
  await mkdir(SERVICES_DIR, { recursive: true });
  await writeFile(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
}

/** Single-quotes a value for POSIX shells when it has anything beyond a safe character set. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]*$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export async function writeEnvFile(vars: Record<string, string>, comments: string[]): Promise<void> {
  await mkdir(SERVICES_DIR, { recursive: true });
  const lines = [
    '# Written by `npm run services:up`; removed by `npm run services:down`.',
    '# Use: set -a; . .services/env; set +a',
    ...comments.map((c) => `# ${c}`),
    ...Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`),
  ];
  await writeFile(ENV_FILE, `${lines.join('\n')}\n`);
}

export async function removeServicesFiles(): Promise<void> {
  await rm(ENV_FILE, { force: true });
  await rm(STATE_FILE, { force: true });
}

/** Hides the password of a connection string for printing. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}
