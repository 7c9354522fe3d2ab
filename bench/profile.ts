/**
 * A small analyzer of V8 `.cpuprofile` files (what `node --cpu-prof` writes): self time per function and
 * per area (relay source, each npm package, node core, GC, idle), optionally cut to a time window.
 *
 * The window is in CLOCK_MONOTONIC microseconds, the clock V8 stamps profile samples with on Linux and
 * the one process.hrtime() reads, so the bench can cut the relay's profile to the interval between the
 * first and the last acknowledged event (startup and shutdown excluded).
 *
 * Standalone: `npx tsx bench/profile.ts <file.cpuprofile> [startUs endUs]`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  findCpuProfiles,
  relayBacklogRun,
  relayRoot,
  type BacklogRunResult,
  type BenchContext,
  type CheckpointMode,
  type Workload,
} from './relayRun.js';
import { onCleanup } from './support.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One thread's profile: the main thread (publishing) and, with RELAY_READER_THREAD, the reader. */
export interface ThreadProfile {
  thread: string;
  summary: ProfileSummary;
}

export interface FunctionCost {
  functionName: string;
  location: string;
  area: string;
  selfMs: number;
  /** Share of the non-idle time in the window, %. */
  selfPct: number;
}

export interface ProfileSummary {
  file: string;
  /** False when the window did not overlap the profile (then the whole profile is used). */
  windowApplied: boolean;
  windowMs: number;
  busyMs: number;
  idleMs: number;
  /** busy / window: how much of one core the relay's main thread used. */
  busyShare: number;
  top: FunctionCost[];
  areas: { area: string; selfMs: number; selfPct: number }[];
  /**
   * Busy time attributed to the innermost relay-source frame on the sampled stack (what relay code the
   * library/runtime work was done for); stacks without one (socket callbacks, GC, timers) are grouped by
   * the area of their leaf. V8 stacks stop at an await, so work resumed from a promise counts there.
   */
  byRelayFrame: { frame: string; selfMs: number; selfPct: number }[];
}

/** The relay's code: its sources (tsx) or the bench's compiled build of them. */
const RELAY_SOURCE_DIRS = ['src', '.cache/bench-build/src'];

const SPECIAL = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

function areaOf(frame: CallFrame, root: string): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const url = frame.url;
  if (url === '') return '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node core';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  if (RELAY_SOURCE_DIRS.some((d) => file.startsWith(path.join(root, d) + path.sep))) return 'relay src';
  return 'other';
}

function locationOf(frame: CallFrame, root: string): string {
  if (frame.url === '') return '';
  let file = frame.url.startsWith('file://') ? new URL(frame.url).pathname : frame.url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) file = file.slice(nm + '/node_modules/'.length);
  else if (file.startsWith(root + path.sep)) file = path.relative(root, file);
  return `${file}:${frame.lineNumber + 1}`;
}

export async function summarizeCpuProfile(
  file: string,
  opts: { window?: { startUs: number; endUs: number }; root: string; topN?: number },
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  // Sample i was taken at times[i]; it stands for the time until the next sample.
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push((t += d));
  let from = profile.startTime;
  let to = profile.endTime;
  let windowApplied = false;
  if (opts.window && opts.window.startUs < profile.endTime && opts.window.endUs > profile.startTime) {
    from = Math.max(from, opts.window.startUs);
    to = Math.min(to, opts.window.endUs);
    windowApplied = true;
  }
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i]!;
    if (at < from || at > to) continue;
    const next = i + 1 < times.length ? times[i + 1]! : profile.endTime;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, next - at));
  }
  const byFunction = new Map<string, { frame: CallFrame; us: number }>();
  const byArea = new Map<string, number>();
  const byRelay = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    totalUs += us;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = byFunction.get(key) ?? { frame, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const area = areaOf(frame, opts.root);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    let relayFrame = `(no relay frame) ${area}`;
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (areaOf(f, opts.root) === 'relay src') {
        relayFrame = `${f.functionName || '(anonymous)'}  ${locationOf(f, opts.root)}`;
        break;
      }
    }
    byRelay.set(relayFrame, (byRelay.get(relayFrame) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number): number => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  const ms = (us: number): number => Math.round(us / 100) / 10;
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, opts.topN ?? 10)
    .map(({ frame, us }) => ({
      functionName: frame.functionName || '(anonymous)',
      location: locationOf(frame, opts.root),
      area: areaOf(frame, opts.root),
      selfMs: ms(us),
      selfPct: pct(us),
    }));
  const areas = [...byArea]
    .sort((a, b) => b[1] - a[1])
    .map(([area, us]) => ({ area, selfMs: ms(us), selfPct: pct(us) }));
  const byRelayFrame = [...byRelay]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.topN ?? 10)
    .map(([frame, us]) => ({ frame, selfMs: ms(us), selfPct: pct(us) }));
  return {
    file,
    windowApplied,
    windowMs: ms(to - from),
    busyMs: ms(busyUs),
    idleMs: ms(idleUs),
    busyShare: Math.round((100 * busyUs) / Math.max(1, to - from)) / 100,
    top,
    areas,
    byRelayFrame,
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [
    `profile ${path.basename(s.file)}: window ${s.windowMs} ms${s.windowApplied ? '' : ' (whole profile)'}, ` +
      `main thread busy ${s.busyMs} ms (${Math.round(s.busyShare * 100)}% of one core), idle ${s.idleMs} ms`,
    '  top self time (share of busy time):',
    ...s.top.map(
      (f, i) =>
        `  ${String(i + 1).padStart(2)}. ${f.selfPct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(1).padStart(8)} ms  ` +
        `${f.functionName}  ${f.location}`,
    ),
    '  busy time by innermost relay frame on the stack:',
    ...s.byRelayFrame.map((f) => `      ${f.selfPct.toFixed(1).padStart(5)}%  ${f.frame}`),
    '  by area: ' +
      s.areas
        .slice(0, 8)
        .map((a) => `${a.area} ${a.selfPct}%`)
        .join(', '),
  ];
  return lines.join('\n');
}

/**
 * A backlog run again, with `node --cpu-prof`: the profile is written when the relay exits (graceful
 * SIGTERM) and summarized over the measured window only. /metrics is scraped every 250 ms here (not 100),
 * so the bench's own scrapes weigh less in the profile. Throughput of this run is lower than the
 * unprofiled one (sampling overhead) and is reported for reference only.
 */
export async function profiledBacklogRun(
  ctx: BenchContext,
  o: { mode: CheckpointMode; size: number; n: number; extra?: Record<string, string>; workload?: Workload },
): Promise<{ run: BacklogRunResult; summaries: ThreadProfile[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-prof-'));
  const unregister = onCleanup(`rm ${dir}`, () => rm(dir, { recursive: true, force: true }));
  try {
    const run = await relayBacklogRun(ctx, {
      mode: o.mode,
      size: o.size,
      n: o.n,
      cpuProfDir: dir,
      sampleMs: 250,
      extra: o.extra,
      workload: o.workload,
    });
    const files = await findCpuProfiles(dir);
    if (files.length === 0)
      throw new Error(`the profiled relay wrote no .cpuprofile into ${dir} (exit code ${run.exitCode})`);
    const summaries: ThreadProfile[] = [];
    for (const { thread, file } of files) {
      const summary = await summarizeCpuProfile(file, { window: run.window, root: relayRoot(), topN: 10 });
      summaries.push({ thread, summary });
    }
    return { run, summaries };
  } finally {
    // BENCH_KEEP_PROFILE=1 keeps the .cpuprofile (open it in Chrome DevTools or re-run this analyzer on it).
    if (!process.env.BENCH_KEEP_PROFILE) await rm(dir, { recursive: true, force: true });
    unregister();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, start, end] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx bench/profile.ts <file.cpuprofile> [startUs endUs]');
    process.exit(2);
  }
  const window = start && end ? { startUs: Number(start), endUs: Number(end) } : undefined;
  const summary = await summarizeCpuProfile(file, {
    window,
    root: path.resolve(import.meta.dirname, '..'),
    topN: 20,
  });
  console.log(formatProfile(summary));
}
