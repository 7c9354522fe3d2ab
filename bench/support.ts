/**
 * Shared bench helpers: payload documents of a given BSON size, start positions, Prometheus text parsing
 * (counters, histogram quantiles), a /metrics sampler, small statistics and the cleanup registry that makes
 * sure every process the bench starts is stopped, also on error or SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BSON, ObjectId, type Collection, type MongoClient } from 'mongodb';

export const BENCH_DB = 'bench';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A collection/topic-safe unique name. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

// ------------------------------------------------------------------------------------------- payloads

export interface BenchDoc {
  _id: ObjectId;
  seq: number;
  /** Date.now() when the bench issued the insert (latency runs). */
  t0: number;
  warm?: boolean;
  pad: string;
}

const pads = new Map<number, string>();

/** The pad that makes {_id: ObjectId, seq: int32, t0: double, pad} exactly `size` bytes of BSON. */
function padFor(size: number): string {
  let pad = pads.get(size);
  if (pad === undefined) {
    const base = BSON.calculateObjectSize({ _id: new ObjectId(), seq: 1, t0: Date.now(), pad: '' });
    if (size <= base) throw new Error(`document size ${size} is below the ${base}-byte minimum`);
    pad = randomBytes(size)
      .toString('base64')
      .replace(/[+/=]/g, 'x')
      .slice(0, size - base);
    pads.set(size, pad);
  }
  return pad;
}

export function makeDoc(size: number, seq: number, t0 = Date.now(), warm = false): BenchDoc {
  const doc: BenchDoc = { _id: new ObjectId(), seq, t0, pad: padFor(size) };
  if (warm) doc.warm = true;
  return doc;
}

export function benchCollection(client: MongoClient, name: string): Collection<BenchDoc> {
  return client.db(BENCH_DB).collection<BenchDoc>(name);
}

/** Inserts n documents (insertMany in chunks: one change event per document). Returns seconds taken. */
export async function insertBacklog(
  coll: Collection<BenchDoc>,
  size: number,
  n: number,
  chunk = 500,
): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const docs: BenchDoc[] = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) docs.push(makeDoc(size, j));
    await coll.insertMany(docs, { ordered: true });
  }
  return (performance.now() - t0) / 1000;
}

/** One update ($set of a counter) of each of the first n documents in _id order: one change event each. */
export async function updateBacklog(coll: Collection<BenchDoc>, n: number, chunk = 500): Promise<number> {
  const t0 = performance.now();
  const ids = (
    await coll
      .find({}, { projection: { _id: 1 } })
      .sort({ _id: 1 })
      .limit(n)
      .toArray()
  ).map((d) => d._id);
  for (let i = 0; i < ids.length; i += chunk) {
    await coll.bulkWrite(
      ids
        .slice(i, i + chunk)
        .map((_id, j) => ({ updateOne: { filter: { _id }, update: { $set: { seq: -1 - (i + j) } } } })),
      { ordered: true },
    );
  }
  return (performance.now() - t0) / 1000;
}

/**
 * Single inserts at a fixed rate: insert i is issued at start + i/rate (t0 = Date.now() at that moment),
 * without waiting for the previous one, up to `maxConcurrent` outstanding (a sequential writer cannot
 * reach 500/s when one round trip takes > 2 ms on a loaded machine). Stops after `count` inserts or when
 * `stop()` returns true. Returns what was written and the achieved rate.
 */
export async function pacedInserts(
  coll: Collection<BenchDoc>,
  o: {
    size: number;
    rate: number;
    count?: number;
    stop?: () => boolean;
    warm?: boolean;
    maxConcurrent?: number;
  },
): Promise<{ written: number; rate: number }> {
  const outstanding = new Set<Promise<unknown>>();
  let failure: unknown = null;
  let written = 0;
  const start = performance.now();
  for (let i = 0; (o.count === undefined || i < o.count) && !(o.stop?.() ?? false); i++) {
    const wait = start + (i * 1000) / o.rate - performance.now();
    if (wait >= 1) await sleep(wait);
    while (outstanding.size >= (o.maxConcurrent ?? 16)) await Promise.race(outstanding);
    if (failure) throw failure;
    const seq = o.warm ? -1 - i : i;
    const p: Promise<unknown> = coll.insertOne(makeDoc(o.size, seq, Date.now(), o.warm ?? false)).then(
      () => {
        written += 1;
        outstanding.delete(p);
      },
      (error: unknown) => {
        failure ??= error;
        outstanding.delete(p);
      },
    );
    outstanding.add(p);
  }
  await Promise.all(outstanding);
  if (failure) throw failure;
  return { written, rate: written / ((performance.now() - start) / 1000) };
}

/**
 * A start position just before whatever is written next: the postBatchResumeToken of a stream opened
 * now (works on a real mongod and on the stand-in). Used as startAfter / RELAY_START_AFTER_TOKEN.
 */
export async function currentToken(coll: Collection<BenchDoc>): Promise<{ _data: string }> {
  const stream = coll.watch([], { maxAwaitTimeMS: 10 });
  try {
    await stream.tryNext();
    const token = stream.resumeToken as { _data?: unknown } | undefined;
    if (!token || typeof token._data !== 'string')
      throw new Error('the change stream returned no resume token');
    return { _data: token._data };
  } finally {
    await stream.close();
  }
}

// ---------------------------------------------------------------------------------------- statistics

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Distribution {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    mean,
  };
}

export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const MB = 1024 * 1024;

// ------------------------------------------------------------------------------------ Prometheus text

export type MetricMap = Map<string, number>;

/** name{labels} -> value. */
export function parseMetrics(text: string): MetricMap {
  const out: MetricMap = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum over every label set of `name`. */
export function metricSum(m: MetricMap, name: string): number {
  let sum = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}

export interface Bucket {
  le: number;
  /** Cumulative count of observations <= le. */
  count: number;
}

/** The cumulative buckets of histogram `name` (label sets other than le are summed). */
export function histogramBuckets(m: MetricMap, name: string): Bucket[] {
  const byLe = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const [k, v] of m) {
    if (!k.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(k)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    byLe.set(bound, (byLe.get(bound) ?? 0) + v);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** after − before, bucket by bucket (observations made between two scrapes). */
export function bucketsDiff(after: Bucket[], before: Bucket[]): Bucket[] {
  const prior = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: b.count - (prior.get(b.le) ?? 0) }));
}

/**
 * Prometheus' histogram_quantile: find the bucket holding rank q·total and interpolate linearly inside it
 * (the lower edge of the first bucket is 0; a rank in +Inf returns the highest finite bound).
 */
export function histogramQuantile(buckets: Bucket[], q: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket === 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// ----------------------------------------------------------------------------------- /metrics sampler

export const METRIC = {
  events: 'mongo_kafka_relay_events_total',
  publishLatency: 'mongo_kafka_relay_publish_latency_seconds',
  inFlight: 'mongo_kafka_relay_in_flight_events',
  checkpointWrites: 'mongo_kafka_relay_checkpoint_writes_total',
  publishErrors: 'mongo_kafka_relay_publish_errors_total',
  rss: 'process_resident_memory_bytes',
  cpuSeconds: 'process_cpu_seconds_total',
  heapUsed: 'nodejs_heap_size_used_bytes',
  heapTotal: 'nodejs_heap_size_total_bytes',
  external: 'nodejs_external_memory_bytes',
  /** The reader thread's own V8 heap (absent with RELAY_READER_THREAD=false: 0). */
  readerHeap: 'mongo_kafka_relay_reader_thread_heap_bytes',
  /** prom-client's event-loop delay figures, over the interval since the previous scrape. */
  loopLagP99: 'nodejs_eventloop_lag_p99_seconds',
  loopLagMax: 'nodejs_eventloop_lag_max_seconds',
} as const;

export interface Sample {
  /** performance.now() of this process, midpoint of the scrape request. */
  at: number;
  /** CLOCK_MONOTONIC in µs (the clock V8 CPU profiles use), midpoint of the scrape. */
  monoUs: number;
  events: number;
  rss: number;
  inFlight: number;
  publishErrors: number;
  checkpointWrites: number;
  /** process_cpu_seconds_total (user + system) of the relay. */
  cpuSeconds: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** The reader thread's heap total (bytes; 0 without a reader thread). */
  readerHeapTotal: number;
  loopLagP99: number;
  loopLagMax: number;
  /** CPU seconds of the Kafka broker and MongoDB processes at this scrape (NaN: unknown). */
  kafkaCpuSeconds: number;
  mongoCpuSeconds: number;
}

/** Server processes whose CPU time is read along with each scrape. */
export interface ServerPids {
  kafkaPid?: number;
  mongoPid?: number;
}

/** Scrapes /metrics every `intervalMs` until stopped; failed scrapes (relay not up yet) are skipped. */
export class MetricsSampler {
  readonly samples: Sample[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly port: number,
    private readonly intervalMs: number,
    private readonly servers: ServerPids = {},
  ) {}

  start(): this {
    this.running = true;
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  latest(): Sample | undefined {
    return this.samples.at(-1);
  }

  /** Resolves with the first sample (from now on) that satisfies `predicate`. */
  async waitFor(predicate: (s: Sample) => boolean, timeoutMs: number, what: string): Promise<Sample> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = this.latest();
      if (s && predicate(s)) return s;
      if (performance.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what} (last sample: ${JSON.stringify(s ?? null)})`,
        );
      }
      if (!this.running) throw new Error(`sampler stopped while waiting for ${what}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Scrape once, outside the loop (e.g. histogram snapshots). */
  async scrape(): Promise<MetricMap> {
    const res = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(5000) });
    return parseMetrics(await res.text());
  }

  private async run(): Promise<void> {
    while (this.running) {
      const begin = performance.now();
      const beginMono = monotonicUs();
      try {
        const m = await this.scrape();
        const end = performance.now();
        this.samples.push({
          at: (begin + end) / 2,
          monoUs: (beginMono + monotonicUs()) / 2,
          events: metricSum(m, METRIC.events),
          rss: metricSum(m, METRIC.rss),
          inFlight: metricSum(m, METRIC.inFlight),
          publishErrors: metricSum(m, METRIC.publishErrors),
          checkpointWrites: metricSum(m, METRIC.checkpointWrites),
          cpuSeconds: metricSum(m, METRIC.cpuSeconds),
          heapUsed: metricSum(m, METRIC.heapUsed),
          heapTotal: metricSum(m, METRIC.heapTotal),
          external: metricSum(m, METRIC.external),
          readerHeapTotal: m.get(`${METRIC.readerHeap}{kind="total"}`) ?? 0,
          loopLagP99: metricSum(m, METRIC.loopLagP99),
          loopLagMax: metricSum(m, METRIC.loopLagMax),
          kafkaCpuSeconds: processCpuSeconds(this.servers.kafkaPid),
          mongoCpuSeconds: processCpuSeconds(this.servers.mongoPid),
        });
      } catch {
        // not listening yet, or busy: try again next tick
      }
      for (const w of this.waiters.splice(0)) w();
      await sleep(Math.max(0, this.intervalMs - (performance.now() - begin)));
    }
    for (const w of this.waiters.splice(0)) w();
  }
}

export interface RssFigures {
  /** Highest sample, MB. */
  peakMB: number;
  /** Median of the second half of the window, MB. */
  steadyMB: number;
  samples: number;
  /** V8 heap (total / used) and external memory at the RSS peak, MB. */
  atPeak?: { heapTotalMB: number; heapUsedMB: number; externalMB: number; readerHeapTotalMB: number };
}

export function rssFigures(samples: readonly Sample[], from = -Infinity, to = Infinity): RssFigures {
  const inWindow = samples.filter((s) => s.at >= from && s.at <= to && s.rss > 0);
  if (inWindow.length === 0) return { peakMB: NaN, steadyMB: NaN, samples: 0 };
  const rss = inWindow.map((s) => s.rss);
  const secondHalf = rss.slice(Math.floor(rss.length / 2)).sort((a, b) => a - b);
  const peak = inWindow.reduce((a, b) => (b.rss > a.rss ? b : a));
  return {
    peakMB: round(peak.rss / MB),
    steadyMB: round(quantile(secondHalf, 0.5) / MB),
    samples: inWindow.length,
    atPeak: {
      heapTotalMB: round(peak.heapTotal / MB),
      heapUsedMB: round(peak.heapUsed / MB),
      externalMB: round(peak.external / MB),
      readerHeapTotalMB: round(peak.readerHeapTotal / MB),
    },
  };
}

// ----------------------------------------------------------------------------------------- cleanup

type Cleanup = () => Promise<void> | void;
const cleanups = new Set<{ fn: Cleanup; what: string }>();

/** Registers a cleanup step (LIFO at runCleanups()); returns its unregister function. */
export function onCleanup(what: string, fn: Cleanup): () => void {
  const entry = { fn, what };
  cleanups.add(entry);
  return () => void cleanups.delete(entry);
}

/** Runs every registered cleanup, newest first, each bounded to 40 s. */
export async function runCleanups(log: (line: string) => void = () => {}): Promise<void> {
  const entries = [...cleanups].reverse();
  cleanups.clear();
  for (const { fn, what } of entries) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(fn),
        new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), 40_000))),
      ]);
    } catch (error) {
      log(`cleanup "${what}" failed: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Rejects with a message naming `what` if `work` does not settle within `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<T>(
        (_, reject) =>
          (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** CPU time (user + system) of this process, µs. */
export function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * CPU time (user + system) of another process, s, from /proc/<pid>/stat (Linux); NaN where that is not
 * available. Used to charge each relay run's events with the Kafka broker's and MongoDB's CPU too: on
 * one machine the three share the cores.
 */
export function processCpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100;
