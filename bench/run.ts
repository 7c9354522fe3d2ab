/**
 * `npm run bench`: relay throughput, latency and memory against the local services, in one bounded run.
 * Not a test: it measures, prints a table, writes bench/results/<ISO time>-<mongo kind>.json, and checks
 * the figures against the targets (see bench/README.md). Every process it starts is stopped at the end,
 * on error, on SIGINT/SIGTERM, and by a watchdog if the whole run exceeds its time budget.
 *
 * KAFKA_BROKERS / MONGODB_URI: use those servers instead of starting them (the outage broker is always a
 * dedicated one). BENCH_QUICK=1: small sizes, for checking the bench itself. BENCH_PROFILE=always|never.
 * BENCH_RELAY_ROOT=<dir>: run the relay from another checkout (see relayRun.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type ChangeStreamDocument } from 'mongodb';
import { kafkaRoundTrip as brokerAnswers, kafkaVersion } from '../scripts/services/kafka.js';
import { startMongo } from '../scripts/services/mongo.js';
import {
  consumerBench,
  consumerTarget,
  renderConsumerBench,
  type ConsumerBenchResult,
} from './consumerRun.js';
import { kafkaClient, startBenchKafka } from './kafkaTools.js';
import { latencyRun, type LatencyResult } from './latency.js';
import { outageRun, type OutageResult } from './outage.js';
import { formatProfile, profiledBacklogRun, type ProfileSummary } from './profile.js';
import { kafkaRoundTrip, rawProduce, type RawProduceResult } from './rawProduce.js';
import { mongoWriteRoundTrip, rawRead, type RawReadResult } from './rawRead.js';
import {
  REPO_ROOT,
  relayBacklogRun,
  relayRoot,
  type BacklogRunResult,
  type CheckpointMode,
} from './relayRun.js';
import { errorText, onCleanup, round, runCleanups, type Distribution, type RssFigures } from './support.js';

const QUICK = process.env.BENCH_QUICK === '1';
const scale = (n: number): number => (QUICK ? Math.max(100, Math.round(n / 5)) : n);
const BUDGET_MS = 9.5 * 60_000;

const SIZES = [200, 4096] as const;
type Size = (typeof SIZES)[number];
const SETTINGS = {
  sizes: SIZES,
  rawReadN: { 200: scale(20000), 4096: scale(8000) } as Record<Size, number>,
  relayN: {
    batched: { 200: scale(20000), 4096: scale(8000) },
    strict: { 200: scale(3000), 4096: scale(2000) },
  } as Record<CheckpointMode, Record<Size, number>>,
  latency: { rate: 500, seconds: QUICK ? 3 : 10, size: 200 },
  outage: { rate: 200, outageS: QUICK ? 5 : 30, size: 200 },
  profile: {
    batched: { size: 200 as Size, n: scale(20000) },
    strict: { size: 200 as Size, n: scale(2000) },
  } as Record<CheckpointMode, { size: Size; n: number }>,
  /** Change-log cap of a stand-in the bench starts (bounds its memory; every phase needs < 25,000). */
  standInOplogEntries: 60000,
};

const TARGETS = { batchedRatio: 0.8, p99Ms: 50, rssMB: 200 };

type RunSummary = Omit<BacklogRunResult, 'samples'>;

interface Results {
  startedAt: string;
  finishedAt?: string;
  durationS?: number;
  machine: Record<string, string | number>;
  settings: typeof SETTINGS & { relayRoot: string; quick: boolean };
  rawRead: Partial<Record<Size, RawReadResult>>;
  rawProduce: Partial<Record<Size, RawProduceResult>>;
  roundTrips: {
    kafkaOneRecordMs?: Distribution;
    mongoCheckpointWriteMs?: Distribution;
    strictBoundPerS?: number;
  };
  relay: Record<CheckpointMode, Partial<Record<Size, RunSummary>>>;
  /** relay ÷ min(a, b). */
  ratios: Record<CheckpointMode, Partial<Record<Size, number>>>;
  latency: Partial<Record<CheckpointMode, LatencyResult>>;
  memory: { peakMB?: number; runs: ({ run: string } & RssFigures)[] };
  outage?: OutageResult;
  consumer?: ConsumerBenchResult;
  profile: Partial<Record<CheckpointMode, { run: RunSummary; summary: ProfileSummary }>>;
  targets: { name: string; target: string; value: number | string; met: boolean }[];
  errors: { phase: string; error: string }[];
}

const t0 = performance.now();
const log = (line: string): void =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);

function withoutSamples(r: BacklogRunResult): RunSummary {
  const { samples: _samples, ...rest } = r;
  return rest;
}

async function phase<T>(results: Results, name: string, work: () => Promise<T>): Promise<T | undefined> {
  const start = performance.now();
  log(`${name} ...`);
  try {
    const value = await work();
    log(`${name}: done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    return value;
  } catch (error) {
    log(`${name}: FAILED: ${errorText(error)}`);
    results.errors.push({ phase: name, error: errorText(error) });
    return undefined;
  }
}

async function startServices(tmp: string): Promise<{
  brokers: string;
  kafkaVersionText: string;
  mongoUri: string;
  mongoKind: string;
  mongoDescription: string;
}> {
  const kafkaP = (async () => {
    const given = process.env.KAFKA_BROKERS;
    if (given) {
      if (!(await brokerAnswers(given.split(',')[0]!.trim(), 5000)))
        throw new Error(`KAFKA_BROKERS=${given} does not answer`);
      return { brokers: given, version: `unknown (KAFKA_BROKERS=${given})` };
    }
    const kafka = await startBenchKafka(path.join(tmp, 'kafka'), log);
    onCleanup(`kafka pid ${kafka.pid}`, () => kafka.stop());
    return { brokers: kafka.brokers, version: kafka.version };
  })();
  const mongoP = (async () => {
    process.env.MONGO_STANDIN_OPLOG_MAX_ENTRIES ??= String(SETTINGS.standInOplogEntries);
    const mongo = await startMongo({ stateDir: path.join(tmp, 'mongo'), detached: false, log });
    onCleanup(`mongodb (${mongo.kind})`, () => mongo.stop());
    return mongo;
  })();
  const [k, m] = await Promise.all([kafkaP, mongoP]);
  const kind =
    m.kind === 'env' ? `env-${m.capabilities.realMongod ? 'mongod' : 'mongo-java-server'}` : m.kind;
  return {
    brokers: k.brokers,
    kafkaVersionText: k.version,
    mongoUri: m.uri,
    mongoKind: kind,
    mongoDescription: m.description,
  };
}

function evaluateTargets(r: Results): void {
  for (const size of SIZES) {
    const ratio = r.ratios.batched[size];
    if (ratio !== undefined)
      r.targets.push({
        name: `batched ${label(size)} relay ÷ min(a,b)`,
        target: `≥ ${TARGETS.batchedRatio}`,
        value: ratio,
        met: ratio >= TARGETS.batchedRatio,
      });
  }
  for (const mode of ['batched', 'strict'] as const) {
    const l = r.latency[mode];
    if (l) {
      const complete = l.received === l.written;
      r.targets.push({
        name: `${mode} p99 latency at ${l.targetRate}/s`,
        target: `< ${TARGETS.p99Ms} ms`,
        value: complete ? l.endToEndMs.p99 : `${l.endToEndMs.p99} (${l.received}/${l.written} received)`,
        met: complete && l.endToEndMs.p99 < TARGETS.p99Ms,
      });
    }
  }
  const peaks = r.memory.runs.map((x) => x.peakMB).filter(Number.isFinite);
  if (peaks.length) {
    const peak = Math.max(...peaks);
    r.memory.peakMB = peak;
    r.targets.push({
      name: 'relay RSS (all runs, outage included)',
      target: `< ${TARGETS.rssMB} MB`,
      value: peak,
      met: peak < TARGETS.rssMB,
    });
  }
  if (r.consumer) r.targets.push(consumerTarget(r.consumer));
  if (r.outage) {
    r.targets.push({
      name: 'outage: every change arrived',
      target: 'all',
      value: `${r.outage.distinctOnTopic}/${r.outage.written}`,
      met: r.outage.allArrived,
    });
  }
}

const label = (size: number): string => (size >= 1024 ? `${size / 1024} KB` : `${size} B`);
const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v)
    ? '—'
    : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   '))
    .join('\n');
}

/** What one thread doing (a)'s and (b)'s work plus toRecord() for every event could reach. */
function oneThreadCeiling(r: Results, size: Size): number {
  const a = r.rawRead[size]?.cpuUsPerEvent;
  const b = r.rawProduce[size];
  return a && b ? 1e6 / (a + b.cpuUsPerEvent + b.serializeUsPerEvent) : NaN;
}

function render(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push('', `mongo-kafka-relay bench — ${r.startedAt} — ${r.durationS ?? '?'} s`);
  out.push(`MongoDB: ${m.mongoDescription}  [${m.mongoKind}, server ${m.mongoVersion}]`);
  out.push(
    `Kafka: ${m.kafkaVersion} (${m.brokers})   machine: ${m.cpus} × ${m.cpuModel}, ${m.totalMemGB} GB, node ${m.node}, load avg (1/5/15 min) at start ${m.loadAvgAtStart}, at end ${m.loadAvgAtEnd}`,
  );
  out.push('', 'Throughput, changes/s (relay: first → last acknowledged event, startup excluded)');
  const rows: string[][] = [['', ...SIZES.map(label)]];
  rows.push(['(a) raw change-stream read (mongodb driver)', ...SIZES.map((s) => fmt(r.rawRead[s]?.rate))]);
  rows.push([
    '(b) raw kafkajs produce (idempotent, acks=all, 1 in flight)',
    ...SIZES.map((s) => fmt(r.rawProduce[s]?.rate)),
  ]);
  for (const mode of ['batched', 'strict'] as const) {
    rows.push([
      `(c) relay ${mode}  (÷ min(a,b))`,
      ...SIZES.map((s) => `${fmt(r.relay[mode][s]?.rate)} (${fmt(r.ratios[mode][s], 2)})`),
    ]);
    rows.push([
      `    ${mode}: rate over the second half of the backlog`,
      ...SIZES.map((s) => fmt(r.relay[mode][s]?.secondHalfRate)),
    ]);
  }
  rows.push([
    'CPU µs per event: (a) reading process',
    ...SIZES.map((s) => fmt(r.rawRead[s]?.cpuUsPerEvent, 1)),
  ]);
  rows.push([
    '                  (b) producing process (+ toRecord)',
    ...SIZES.map(
      (s) => `${fmt(r.rawProduce[s]?.cpuUsPerEvent, 1)} (+${fmt(r.rawProduce[s]?.serializeUsPerEvent, 1)})`,
    ),
  ]);
  rows.push([
    '                  relay batched / strict',
    ...SIZES.map(
      (s) => `${fmt(r.relay.batched[s]?.cpuUsPerEvent, 1)} / ${fmt(r.relay.strict[s]?.cpuUsPerEvent, 1)}`,
    ),
  ]);
  rows.push([
    '    one-thread ceiling 1e6 / (a + b + toRecord µs)',
    ...SIZES.map((s) => fmt(oneThreadCeiling(r, s))),
  ]);
  rows.push(['    relay batched CPU use, cores', ...SIZES.map((s) => fmt(r.relay.batched[s]?.cpuCores, 2))]);
  rows.push([
    '    relay startup (spawn → first ack), s, batched',
    ...SIZES.map((s) => fmt(r.relay.batched[s]?.startupS, 1)),
  ]);
  rows.push([
    '    backlog N (a / batched / strict)',
    ...SIZES.map(
      (s) => `${r.settings.rawReadN[s]} / ${r.settings.relayN.batched[s]} / ${r.settings.relayN.strict[s]}`,
    ),
  ]);
  out.push(table(rows));
  const rt = r.roundTrips;
  out.push(
    `strict-mode bound 1/(Kafka RTT + MongoDB RTT): Kafka 1-record acks=all round trip mean ${fmt(rt.kafkaOneRecordMs?.mean, 2)} ms ` +
      `(p50 ${fmt(rt.kafkaOneRecordMs?.p50, 2)}) + MongoDB checkpoint updateOne mean ${fmt(rt.mongoCheckpointWriteMs?.mean, 2)} ms ` +
      `(p50 ${fmt(rt.mongoCheckpointWriteMs?.p50, 2)}) → ≈ ${fmt(rt.strictBoundPerS)} changes/s ` +
      `(strict measured: ${SIZES.map((s) => `${label(s)} ${fmt(r.relay.strict[s]?.rate)}`).join(', ')}; the round trips are timed ` +
      `from the bench process, whose own client overhead is included)`,
  );

  out.push(
    '',
    `Latency at ${r.settings.latency.rate} changes/s for ${r.settings.latency.seconds} s, ${label(r.settings.latency.size)} docs (ms)`,
  );
  const lrows: string[][] = [
    ['', 'write rate', 'received', 'e2e p50', 'e2e p99', 'e2e max', 'relay read→ack p50', 'p99', 'drain s'],
  ];
  for (const mode of ['batched', 'strict'] as const) {
    const l = r.latency[mode];
    lrows.push(
      l
        ? [
            mode,
            fmt(l.writeRate),
            `${l.received}/${l.written}`,
            fmt(l.endToEndMs.p50, 1),
            fmt(l.endToEndMs.p99, 1),
            fmt(l.endToEndMs.max, 1),
            fmt(l.relayPublishMs.p50, 2),
            fmt(l.relayPublishMs.p99, 2),
            fmt(l.drainS, 1),
          ]
        : [mode, '—', '—', '—', '—', '—', '—', '—', '—'],
    );
  }
  out.push(table(lrows));
  out.push(
    '  e2e = t0 written into the doc just before insertOne → kafkajs consumer (maxWaitTimeInMs 10) received it',
  );
  for (const mode of ['batched', 'strict'] as const) {
    const seg = r.latency[mode]?.segmentsMs;
    if (!seg) continue;
    const f = (d: { p50: number; p99: number }): string => `${fmt(d.p50, 0)}/${fmt(d.p99, 0)}`;
    out.push(
      `  ${mode} split p50/p99: insert→commit (wallTime) ${f(seg.commit)}; commit→Kafka request built ${f(seg.toKafka)}; ` +
        `built→consumer received ${f(seg.kafkaToConsumer)}; relay event-loop delay: worst p99 ` +
        `${fmt(r.latency[mode]?.relayLoopLagMs.worstP99, 0)}, max ${fmt(r.latency[mode]?.relayLoopLagMs.max, 0)}`,
    );
  }

  out.push('', 'Relay RSS, MB (sampled from /metrics process_resident_memory_bytes)');
  const mrows: string[][] = [['run', 'peak', 'steady', 'at peak: V8 heap total/used, external']];
  for (const x of r.memory.runs)
    mrows.push([
      x.run,
      fmt(x.peakMB, 1),
      fmt(x.steadyMB, 1),
      x.atPeak
        ? `${fmt(x.atPeak.heapTotalMB, 1)}/${fmt(x.atPeak.heapUsedMB, 1)}, ${fmt(x.atPeak.externalMB, 1)}`
        : '—',
    ]);
  out.push(table(mrows));

  const o = r.outage;
  if (o) {
    out.push(
      '',
      `Kafka outage (dedicated broker, relay batched, RELAY_MAX_IN_FLIGHT default, ~${o.targetRate} writes/s)`,
    );
    out.push(
      table([
        [
          'broker down',
          'unavailable',
          'written',
          'relayed',
          'on topic (distinct/records)',
          'all arrived',
          'recovery',
          'max in-flight',
          'publish errors',
        ],
        [
          `${o.brokerDownS} s`,
          `${o.unavailableS} s`,
          String(o.written),
          String(o.relayed),
          `${o.distinctOnTopic}/${o.recordsOnTopic}`,
          o.allArrived ? 'yes' : 'NO',
          `${fmt(o.recoveryS, 1)} s`,
          String(o.maxInFlightDuringOutage),
          String(o.publishErrors),
        ],
      ]),
    );
    out.push(
      `  RSS MB: before peak ${fmt(o.rss.before.peakMB, 1)}; during outage peak ${fmt(o.rss.during.peakMB, 1)} (steady ${fmt(o.rss.during.steadyMB, 1)}); after recovery peak ${fmt(o.rss.after.peakMB, 1)} (steady ${fmt(o.rss.after.steadyMB, 1)})`,
    );
  }

  for (const mode of ['batched', 'strict'] as const) {
    const p = r.profile[mode];
    if (!p) continue;
    out.push(
      '',
      `CPU profile: ${mode} backlog run, ${label(p.run.size)} × ${p.run.n} (profiled rate ${fmt(p.run.rate)}/s, ` +
        `relay CPU ${fmt(p.run.cpuUsPerEvent, 1)} µs/event)`,
    );
    out.push(formatProfile(p.summary));
  }

  out.push(...renderConsumerBench(r.consumer));
  out.push('', 'Targets');
  const trows: string[][] = [['', 'target', 'value', '']];
  for (const t of r.targets) trows.push([t.name, t.target, String(t.value), t.met ? 'met' : 'MISSED']);
  out.push(table(trows));
  if (r.errors.length) {
    out.push('', 'Errors');
    for (const e of r.errors) out.push(`  ${e.phase}: ${e.error.split('\n')[0]}`);
  }
  return out.join('\n');
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const cpus = os.cpus();
  const results: Results = {
    startedAt: startedAt.toISOString(),
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      totalMemGB: round(os.totalmem() / 1024 ** 3, 1),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAvgAtStart: os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
    },
    settings: { ...SETTINGS, relayRoot: relayRoot(), quick: QUICK },
    rawRead: {},
    rawProduce: {},
    roundTrips: {},
    relay: { batched: {}, strict: {} },
    ratios: { batched: {}, strict: {} },
    latency: {},
    memory: { runs: [] },
    profile: {},
    targets: [],
    errors: [],
  };

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-'));
  onCleanup(`rm ${tmp}`, () => rm(tmp, { recursive: true, force: true }));
  log(`services: starting (temp dir ${tmp}) ...`);
  const svc = await startServices(tmp);
  const client = new MongoClient(svc.mongoUri);
  await client.connect();
  onCleanup('mongo client', () => client.close());
  const buildInfo = await client.db('admin').command({ buildInfo: 1 });
  Object.assign(results.machine, {
    kafkaVersion:
      svc.kafkaVersionText === kafkaVersion() ? `Apache Kafka ${svc.kafkaVersionText}` : svc.kafkaVersionText,
    brokers: svc.brokers,
    mongoKind: svc.mongoKind,
    mongoDescription: svc.mongoDescription,
    mongoVersion: buildInfo.mongoJavaServer
      ? `reports ${buildInfo.version}, mongo-java-server ${buildInfo.mongoJavaServer}`
      : String(buildInfo.version),
  });
  log(`services: kafka ${svc.brokers}, mongodb ${svc.mongoKind} (${svc.mongoDescription})`);
  const kafka = kafkaClient(svc.brokers);
  const ctx = { client, mongoUri: svc.mongoUri, brokers: svc.brokers };

  // (a) + (b); 1,000 real 200-B events are kept for the round-trip measurement before the strict runs.
  let rttEvents: ChangeStreamDocument[] = [];
  for (const size of SIZES) {
    const read = await phase(results, `(a) raw read ${label(size)}`, () =>
      rawRead(client, size, SETTINGS.rawReadN[size]),
    );
    if (!read) continue;
    results.rawRead[size] = read.result;
    log(`  read ${read.result.rate}/s`);
    const produced = await phase(results, `(b) raw produce ${label(size)}`, () =>
      rawProduce(kafka, size, read.events),
    );
    if (produced) {
      results.rawProduce[size] = produced;
      log(`  produced ${produced.rate}/s in ${produced.requests} requests, ${produced.recordBytes} B/record`);
    }
    if (size === 200) rttEvents = read.events.slice(0, 1000);
  }

  // (c) relay backlog runs.
  for (const mode of ['batched', 'strict'] as const) {
    if (mode === 'strict' && rttEvents.length > 0) {
      // What strict mode waits for per event, measured right before the strict runs: one 1-record
      // acks=all produce request and one fenced checkpoint updateOne, one after the other.
      const events = rttEvents;
      const k = await phase(results, 'Kafka one-record round trip', () => kafkaRoundTrip(kafka, events));
      const mo = await phase(results, 'MongoDB checkpoint-write round trip', () =>
        mongoWriteRoundTrip(client),
      );
      if (k) results.roundTrips.kafkaOneRecordMs = k;
      if (mo) results.roundTrips.mongoCheckpointWriteMs = mo;
      if (k && mo) results.roundTrips.strictBoundPerS = round(1000 / (k.mean + mo.mean), 0);
    }
    for (const size of SIZES) {
      const n = SETTINGS.relayN[mode][size];
      const run = await phase(results, `(c) relay ${mode} ${label(size)} × ${n}`, () =>
        relayBacklogRun(ctx, { mode, size, n }),
      );
      if (!run) continue;
      results.relay[mode][size] = withoutSamples(run);
      results.memory.runs.push({ run: `(c) ${mode} ${label(size)}`, ...run.rss });
      const a = results.rawRead[size]?.rate;
      const b = results.rawProduce[size]?.rate;
      if (a && b) results.ratios[mode][size] = round(run.rate / Math.min(a, b), 2);
      log(
        `  ${run.rate}/s (startup ${run.startupS} s, ${run.checkpointWrites} checkpoint writes, RSS peak ${run.rss.peakMB} MB)`,
      );
    }
  }

  // (d) latency at a fixed rate.
  for (const mode of ['batched', 'strict'] as const) {
    const l = await phase(results, `(d) latency ${mode} at ${SETTINGS.latency.rate}/s`, () =>
      latencyRun(ctx, kafka, { mode, ...SETTINGS.latency }),
    );
    if (!l) continue;
    results.latency[mode] = l;
    results.memory.runs.push({ run: `(d) latency ${mode}`, ...l.rss });
    log(
      `  p50 ${l.endToEndMs.p50} ms, p99 ${l.endToEndMs.p99} ms, max ${l.endToEndMs.max} ms (${l.received}/${l.written})`,
    );
  }

  // (f) the consumer helper against a raw kafkajs consumer (bench/consumerRun.ts).
  results.consumer = await phase(results, '(f) consumer helper vs raw kafkajs consumer', () =>
    consumerBench(ctx, { n: scale(20000), size: 200, log }),
  );

  // Profile the batched backlog run when a target is missed.
  evaluateTargets(results);
  const missed = results.targets.some((t) => !t.met);
  const profileWanted =
    process.env.BENCH_PROFILE === 'always' || (process.env.BENCH_PROFILE !== 'never' && missed);
  results.targets = [];
  for (const mode of profileWanted ? (['batched', 'strict'] as const) : []) {
    const o = SETTINGS.profile[mode];
    const p = await phase(results, `CPU profile of a ${mode} ${label(o.size)} × ${o.n} backlog run`, () =>
      profiledBacklogRun(ctx, { mode, ...o }),
    );
    if (p) results.profile[mode] = { run: withoutSamples(p.run), summary: p.summary };
  }

  // (e) Kafka outage.
  const outage = await phase(results, `(e) Kafka outage ${SETTINGS.outage.outageS} s`, () =>
    outageRun(ctx, { ...SETTINGS.outage, log }),
  );
  if (outage) {
    results.outage = outage;
    results.memory.runs.push({ run: '(e) outage: before', ...outage.rss.before });
    results.memory.runs.push({ run: '(e) outage: during', ...outage.rss.during });
    results.memory.runs.push({ run: '(e) outage: after recovery', ...outage.rss.after });
  }

  evaluateTargets(results);
  const finished = new Date();
  results.finishedAt = finished.toISOString();
  results.machine.loadAvgAtEnd = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  results.durationS = round((performance.now() - t0) / 1000, 1);
  console.log(render(results));

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const stamp = startedAt
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const file = path.join(dir, `${stamp}-${svc.mongoKind}${QUICK ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  return results.errors.length > 0 ? 1 : 0;
}

let stopping = false;
async function shutdown(reason: string, code: number): Promise<never> {
  if (stopping) process.exit(code);
  stopping = true;
  log(`${reason}: stopping everything the bench started ...`);
  await runCleanups(log);
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal, 130));
const watchdog = setTimeout(
  () => void shutdown(`time budget of ${BUDGET_MS / 60_000} min exceeded`, 2),
  BUDGET_MS,
);

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  clearTimeout(watchdog);
  if (!stopping) {
    stopping = true;
    await runCleanups(log);
  }
}
process.exit(exitCode);
