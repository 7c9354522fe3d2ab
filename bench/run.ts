/**
 * `npm run bench`: relay throughput, CPU, latency, memory, crash duplicates and outage recovery against
 * the local services, in one bounded run. Not a test: it measures, prints a table, writes
 * bench/results/<ISO time>-<mongo kind>.json, and checks the figures against the targets of issue 9
 * (see bench/README.md). Every process it starts is stopped at the end, on error, on SIGINT/SIGTERM,
 * and by a watchdog if the whole run exceeds its time budget.
 *
 * KAFKA_BROKERS / MONGODB_URI: use those servers instead of starting them (the outage broker is always a
 * dedicated one); BENCH_KAFKA_PID / BENCH_MONGO_PID let the bench charge their CPU to the events too.
 * BENCH_QUICK=1: small sizes, for checking the bench itself. BENCH_PROFILE=always|never.
 * BENCH_RELAY_ROOT=<dir>: run the relay from another checkout; BENCH_RELAY_TSX=1: from its sources.
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
  type ConsumerModule,
  renderConsumerBench,
  type ConsumerBenchResult,
} from './consumerRun.js';
import { CHECKPOINT_MODES, type CheckpointMode } from '../src/config/schema.js';
import { crashRun, type CrashResult } from './crash.js';
import { snapshotRun, type SnapshotRunResult } from './snapshotRun.js';
import { kafkaClient, startBenchKafka } from './kafkaTools.js';
import { ANCHOR_WORKLOADS, renderSideBySide, sideBySide } from './anchors/sideBySide.js';
import { latencyRun, type LatencyResult } from './latency.js';
import { outageRun, type OutageResult } from './outage.js';
import { formatProfile, profiledBacklogRun, type ThreadProfile } from './profile.js';
import { kafkaRoundTrip, rawProduce, type RawProduceResult } from './rawProduce.js';
import { mongoWriteRoundTrip, rawRead, type RawReadResult } from './rawRead.js';
import {
  REPO_ROOT,
  buildRelay,
  relayBacklogRun,
  relayNodeOptions,
  relayModuleUrl,
  relayRoot,
  type BacklogRunResult,
} from './relayRun.js';
import { errorText, onCleanup, round, runCleanups, type Distribution, type RssFigures } from './support.js';

const QUICK = process.env.BENCH_QUICK === '1';
const scale = (n: number): number => (QUICK ? Math.max(100, Math.round(n / 5)) : n);
const BUDGET_MS = 14 * 60_000;
const DEFAULT_MODE: CheckpointMode = 'continuous';

const SIZES = [200, 4096] as const;
type Size = (typeof SIZES)[number];
const SETTINGS = {
  sizes: SIZES,
  modes: CHECKPOINT_MODES,
  rawReadN: { 200: scale(20000), 4096: scale(8000) } as Record<Size, number>,
  relayN: {
    continuous: { 200: scale(20000), 4096: scale(8000) },
    batched: { 200: scale(20000), 4096: scale(8000) },
    serial: { 200: scale(3000), 4096: scale(2000) },
  } as Record<CheckpointMode, Record<Size, number>>,
  /**
   * The anchors' shape: ~1.1 KB documents, RELAY_FULL_DOCUMENT=updateLookup (the default), a backlog of
   * inserts then updates as large as the stand-in's change log (capped below) comfortably holds.
   */
  anchor: { size: 1100, n: scale(50000), mode: DEFAULT_MODE },
  latency: { rate: 500, seconds: QUICK ? 3 : 10, size: 200 },
  crash: { size: 200, n: { continuous: scale(10000), batched: scale(10000), serial: scale(1500) } },
  outage: { rate: 300, outageS: QUICK ? 10 : 60, size: 200, mode: DEFAULT_MODE },
  profile: { mode: DEFAULT_MODE, size: 200 as Size, n: scale(20000) },
  /** Change-log cap of a stand-in the bench starts (bounds its memory); the anchor run needs 50,000. */
  standInOplogEntries: 60000,
};

/** Published figures the anchor run is shown next to (ConduitIO streaming-benchmarks, 2025). */
const ANCHORS = [
  { name: 'MongoDB Kafka connector (Kafka Connect)', perS: 14_600, hardware: '4 vCPU' },
  { name: 'Debezium MongoDB connector', perS: 32_000, hardware: '8 vCPU' },
];

/** Issue 9's targets: benchmark figures, never test assertions. */
const TARGETS = {
  ratio: 0.8,
  defaultPerS200: 20_000,
  defaultVsBatched: 0.9,
  rssMB: 150,
  p99Ms: 50,
  /** Issue 19: exactly-once throughput ÷ the at-least-once default, same run. */
  exactlyOnce: 0.8,
};

type RunSummary = Omit<BacklogRunResult, 'samples'>;

/** Exactly-once with in-flight limits four times the defaults (a transaction spans the events in flight). */
const EO_LARGE_LIMITS = { RELAY_MAX_IN_FLIGHT: '8000', RELAY_MAX_IN_FLIGHT_BYTES: String(32 << 20) };

interface Results {
  startedAt: string;
  finishedAt?: string;
  durationS?: number;
  machine: Record<string, string | number>;
  settings: typeof SETTINGS & { relayRoot: string; relayBuild: string; quick: boolean };
  rawRead: Partial<Record<Size, RawReadResult>>;
  rawProduce: Partial<Record<Size, RawProduceResult>>;
  roundTrips: {
    kafkaOneRecordMs?: Distribution;
    mongoCheckpointWriteMs?: Distribution;
    serialBoundPerS?: number;
  };
  relay: Record<CheckpointMode, Partial<Record<Size, RunSummary>>>;
  /** relay ÷ min(a, b). */
  ratios: Record<CheckpointMode, Partial<Record<Size, number>>>;
  /** Issue 19: RELAY_DELIVERY=exactly-once (default checkpoint mode), and its rate ÷ the default's. */
  exactlyOnce: Partial<Record<Size, RunSummary & { vsDefault?: number }>>;
  /** The same with EO_LARGE_LIMITS: transactions spanning more events. */
  exactlyOnceLarge: Partial<Record<Size, RunSummary & { vsDefault?: number }>>;
  anchor?: RunSummary & { anchors: typeof ANCHORS };
  /** Issue 21: Debezium's MongoDB connector beside the relay (phase f; all workloads with --anchors). */
  sideBySide?: Awaited<ReturnType<typeof sideBySide>>;
  /** Issue 15: the initial snapshot's copy rate, next to its anchor. */
  snapshot?: SnapshotRunResult;
  latency: Partial<Record<CheckpointMode, LatencyResult>>;
  crash: Partial<Record<CheckpointMode, CrashResult>>;
  memory: { peakMB?: number; runs: ({ run: string } & RssFigures)[] };
  outage?: OutageResult;
  consumer?: ConsumerBenchResult;
  profile?: { run: RunSummary; threads: ThreadProfile[] };
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
  kafkaPid?: number;
  mongoUri: string;
  mongoKind: string;
  mongoDescription: string;
  mongoPid?: number;
}> {
  const kafkaP = (async () => {
    const given = process.env.KAFKA_BROKERS;
    if (given) {
      if (!(await brokerAnswers(given.split(',')[0]!.trim(), 5000)))
        throw new Error(`KAFKA_BROKERS=${given} does not answer`);
      const pid = Number(process.env.BENCH_KAFKA_PID) || undefined;
      return { brokers: given, version: `unknown (KAFKA_BROKERS=${given})`, pid };
    }
    const kafka = await startBenchKafka(path.join(tmp, 'kafka'), log);
    onCleanup(`kafka pid ${kafka.pid}`, () => kafka.stop());
    return { brokers: kafka.brokers, version: kafka.version, pid: kafka.pid };
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
    kafkaPid: k.pid,
    mongoUri: m.uri,
    mongoKind: kind,
    mongoDescription: m.description,
    mongoPid: m.kind === 'env' ? Number(process.env.BENCH_MONGO_PID) || undefined : m.pid,
  };
}

function evaluateTargets(r: Results): void {
  const add = (name: string, target: string, value: number | string, met: boolean): void => {
    r.targets.push({ name, target, value, met });
  };
  for (const size of SIZES) {
    const ratio = r.ratios[DEFAULT_MODE][size];
    if (ratio !== undefined)
      add(
        `${DEFAULT_MODE} ${label(size)} relay ÷ min(a,b)`,
        `≥ ${TARGETS.ratio}`,
        ratio,
        ratio >= TARGETS.ratio,
      );
  }
  const rate200 = r.relay[DEFAULT_MODE][200]?.rate;
  if (rate200 !== undefined)
    add(
      `${DEFAULT_MODE} 200 B changes/s`,
      `≥ ${TARGETS.defaultPerS200.toLocaleString('en-US')}`,
      rate200,
      rate200 >= TARGETS.defaultPerS200,
    );
  for (const size of SIZES) {
    const c = r.relay[DEFAULT_MODE][size]?.rate;
    const b = r.relay.batched[size]?.rate;
    if (c !== undefined && b !== undefined) {
      const ratio = round(c / b, 2);
      add(
        `${DEFAULT_MODE} ÷ batched ${label(size)}`,
        `≥ ${TARGETS.defaultVsBatched}`,
        ratio,
        ratio >= TARGETS.defaultVsBatched,
      );
    }
  }
  for (const size of SIZES) {
    const ratio = r.exactlyOnce[size]?.vsDefault;
    if (ratio !== undefined)
      add(
        `exactly-once ÷ at-least-once ${label(size)}`,
        `≥ ${TARGETS.exactlyOnce}`,
        ratio,
        ratio >= TARGETS.exactlyOnce,
      );
  }
  const l = r.latency[DEFAULT_MODE];
  if (l) {
    const complete = l.received === l.written;
    const p99 = l.segmentsMs.toKafka.p99;
    add(
      `${DEFAULT_MODE} p99 commit → Kafka ack at ${l.targetRate}/s`,
      `< ${TARGETS.p99Ms} ms`,
      complete ? p99 : `${p99} (${l.received}/${l.written} received)`,
      complete && p99 < TARGETS.p99Ms,
    );
  }
  const peaks = r.memory.runs.map((x) => x.peakMB).filter(Number.isFinite);
  if (peaks.length) {
    const peak = Math.max(...peaks);
    r.memory.peakMB = peak;
    add(
      'relay RSS peak (every run, the outage included)',
      `< ${TARGETS.rssMB} MB`,
      peak,
      peak < TARGETS.rssMB,
    );
  }
  if (r.outage)
    add(
      'outage: every change arrived',
      'all',
      `${r.outage.distinctOnTopic}/${r.outage.written}`,
      r.outage.allArrived,
    );
  for (const mode of CHECKPOINT_MODES) {
    const c = r.crash[mode];
    if (c)
      add(
        `SIGKILL mid-stream, ${mode}: lost / duplicates`,
        `0 / ≤ ${c.bound}`,
        `${c.lost} / ${c.duplicates}`,
        c.lost === 0 && c.duplicates <= c.bound,
      );
  }
  if (r.consumer) r.targets.push(consumerTarget(r.consumer));
}

const label = (size: number): string =>
  size >= 1024 && size % 1024 === 0 ? `${size / 1024} KB` : `${size} B`;
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
  out.push(`relay: ${r.settings.relayBuild} (${r.settings.relayRoot})`);
  out.push('', 'Throughput, changes/s (relay: first → last acknowledged event, startup excluded)');
  const rows: string[][] = [['', ...SIZES.map(label)]];
  rows.push(['(a) raw change-stream read (mongodb driver)', ...SIZES.map((s) => fmt(r.rawRead[s]?.rate))]);
  rows.push([
    '(b) raw kafkajs produce (idempotent, acks=all, 1 in flight)',
    ...SIZES.map((s) => fmt(r.rawProduce[s]?.rate)),
  ]);
  for (const mode of CHECKPOINT_MODES) {
    rows.push([
      `(c) relay ${mode}${mode === DEFAULT_MODE ? ' (default)' : ''}  (÷ min(a,b))`,
      ...SIZES.map((s) => `${fmt(r.relay[mode][s]?.rate)} (${fmt(r.ratios[mode][s], 2)})`),
    ]);
    rows.push([
      `    ${mode}: second half of the backlog / checkpoint writes`,
      ...SIZES.map(
        (s) => `${fmt(r.relay[mode][s]?.secondHalfRate)} / ${fmt(r.relay[mode][s]?.checkpointWrites)}`,
      ),
    ]);
  }
  rows.push([
    '(c) relay exactly-once (RELAY_DELIVERY)  (÷ default at-least-once)',
    ...SIZES.map((s) => `${fmt(r.exactlyOnce[s]?.rate)} (${fmt(r.exactlyOnce[s]?.vsDefault, 2)})`),
  ]);
  rows.push([
    '    exactly-once, RELAY_MAX_IN_FLIGHT=8000, _BYTES=32 MB  (÷ default)',
    ...SIZES.map((s) => `${fmt(r.exactlyOnceLarge[s]?.rate)} (${fmt(r.exactlyOnceLarge[s]?.vsDefault, 2)})`),
  ]);
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
  for (const mode of CHECKPOINT_MODES) {
    rows.push([
      `                  relay ${mode} (both threads) / Kafka / MongoDB`,
      ...SIZES.map((s) => {
        const x = r.relay[mode][s];
        return `${fmt(x?.cpuUsPerEvent, 1)} / ${fmt(x?.serverCpuUsPerEvent.kafka, 1)} / ${fmt(x?.serverCpuUsPerEvent.mongo, 1)}`;
      }),
    ]);
  }
  rows.push([
    `    machine ceiling ${m.cpus} cores × 1e6 / (relay + Kafka + MongoDB µs), ${DEFAULT_MODE}`,
    ...SIZES.map((s) => fmt(r.relay[DEFAULT_MODE][s]?.machineCeilingPerS)),
  ]);
  rows.push([
    '    one-thread ceiling 1e6 / (a + b + toRecord µs)',
    ...SIZES.map((s) => fmt(oneThreadCeiling(r, s))),
  ]);
  rows.push([
    `    relay ${DEFAULT_MODE} CPU use, cores`,
    ...SIZES.map((s) => fmt(r.relay[DEFAULT_MODE][s]?.cpuCores, 2)),
  ]);
  rows.push([
    `    relay startup (spawn → first ack), s, ${DEFAULT_MODE}`,
    ...SIZES.map((s) => fmt(r.relay[DEFAULT_MODE][s]?.startupS, 1)),
  ]);
  rows.push([
    `    backlog N (a / ${CHECKPOINT_MODES.join(' / ')})`,
    ...SIZES.map((s) =>
      [r.settings.rawReadN[s], ...CHECKPOINT_MODES.map((mo) => r.settings.relayN[mo][s])].join(' / '),
    ),
  ]);
  out.push(table(rows));
  const rt = r.roundTrips;
  out.push(
    `serial-mode bound 1/(Kafka RTT + MongoDB RTT): Kafka 1-record acks=all round trip mean ${fmt(rt.kafkaOneRecordMs?.mean, 2)} ms ` +
      `(p50 ${fmt(rt.kafkaOneRecordMs?.p50, 2)}) + MongoDB checkpoint updateOne mean ${fmt(rt.mongoCheckpointWriteMs?.mean, 2)} ms ` +
      `(p50 ${fmt(rt.mongoCheckpointWriteMs?.p50, 2)}) → ≈ ${fmt(rt.serialBoundPerS)} changes/s ` +
      `(serial measured: ${SIZES.map((s) => `${label(s)} ${fmt(r.relay.serial[s]?.rate)}`).join(', ')})`,
  );

  const sn = r.snapshot;
  if (sn)
    out.push(
      '',
      `Snapshot (RELAY_SNAPSHOT=initial, ${sn.mode}): ${fmt(sn.copied)} documents of ${label(sn.size)} in ${fmt(sn.seconds, 2)} s = ` +
        `${fmt(sn.docsPerS)} docs/s; anchor ${sn.anchor.name}: ${fmt(sn.anchor.perS)} docs/s (${sn.anchor.hardware}, ConduitIO 2025)`,
    );
  const a = r.anchor;
  if (a) {
    out.push(
      '',
      `Anchors' workload: ${label(a.size)} documents, ${a.n.toLocaleString('en-US')} changes (inserts, then an update of each: updateLookup), relay ${a.mode}`,
    );
    const arows: string[][] = [['', 'changes/s', 'hardware']];
    arows.push([
      `mongo-kafka-relay ${a.mode} (this run)`,
      fmt(a.rate),
      `${m.cpus} × ${m.cpuModel}, shared with Kafka and MongoDB`,
    ]);
    for (const x of a.anchors)
      arows.push([`${x.name} (ConduitIO streaming-benchmarks, 2025)`, fmt(x.perS), x.hardware]);
    out.push(table(arows));
    out.push(
      `  relay CPU ${fmt(a.cpuUsPerEvent, 1)} µs/event, Kafka ${fmt(a.serverCpuUsPerEvent.kafka, 1)}, MongoDB ${fmt(a.serverCpuUsPerEvent.mongo, 1)}; ` +
        `machine ceiling ≈ ${fmt(a.machineCeilingPerS)}/s; RSS peak ${fmt(a.rss.peakMB, 1)} MB; ${fmt(a.checkpointWrites)} checkpoint writes`,
    );
  }

  out.push(
    '',
    `Latency at ${r.settings.latency.rate} changes/s for ${r.settings.latency.seconds} s, ${label(r.settings.latency.size)} docs (ms)`,
  );
  const lrows: string[][] = [
    [
      '',
      'write rate',
      'received',
      'commit→ack p50',
      'p99',
      'max',
      'e2e p50',
      'e2e p99',
      'relay read→ack p99',
      'drain s',
    ],
  ];
  for (const mode of CHECKPOINT_MODES) {
    const l = r.latency[mode];
    lrows.push(
      l
        ? [
            mode,
            fmt(l.writeRate),
            `${l.received}/${l.written}`,
            fmt(l.segmentsMs.toKafka.p50, 0),
            fmt(l.segmentsMs.toKafka.p99, 0),
            fmt(l.segmentsMs.toKafka.max, 0),
            fmt(l.endToEndMs.p50, 1),
            fmt(l.endToEndMs.p99, 1),
            fmt(l.relayPublishMs.p99, 2),
            fmt(l.drainS, 1),
          ]
        : [mode, '—', '—', '—', '—', '—', '—', '—', '—', '—'],
    );
  }
  out.push(table(lrows));
  out.push(
    "  commit→ack = the event's wallTime → its Kafka LogAppendTime; e2e = t0 written into the doc just before insertOne → kafkajs consumer (maxWaitTimeInMs 10) received it",
  );

  out.push('', 'SIGKILL mid-stream (half the backlog acknowledged), then a restart with the same checkpoint');
  const crows: string[][] = [
    ['mode', 'written', 'on topic', 'lost', 'duplicates', 'bound', 'in flight at kill', 'recovery s'],
  ];
  for (const mode of CHECKPOINT_MODES) {
    const c = r.crash[mode];
    crows.push(
      c
        ? [
            mode,
            String(c.written),
            String(c.recordsOnTopic),
            String(c.lost),
            String(c.duplicates),
            String(c.bound),
            String(c.inFlightAtKill),
            fmt(c.recoveryS, 1),
          ]
        : [mode, '—', '—', '—', '—', '—', '—', '—'],
    );
  }
  out.push(table(crows));

  out.push('', 'Relay RSS, MB (sampled from /metrics process_resident_memory_bytes; both threads)');
  const mrows: string[][] = [
    [
      'run',
      'peak',
      'steady',
      'at peak: V8 heap total/used (main thread), external, reader thread heap total',
    ],
  ];
  for (const x of r.memory.runs)
    mrows.push([
      x.run,
      fmt(x.peakMB, 1),
      fmt(x.steadyMB, 1),
      x.atPeak
        ? `${fmt(x.atPeak.heapTotalMB, 1)}/${fmt(x.atPeak.heapUsedMB, 1)}, ${fmt(x.atPeak.externalMB, 1)}, ${fmt(x.atPeak.readerHeapTotalMB, 1)}`
        : '—',
    ]);
  out.push(table(mrows));

  const o = r.outage;
  if (o) {
    out.push(
      '',
      `Kafka outage (dedicated broker, relay ${o.mode}, default limits, ~${o.targetRate} writes/s)`,
    );
    out.push(
      table([
        [
          'broker down',
          'written',
          'on topic (distinct/records)',
          'all arrived',
          'backlog at recovery',
          'catch-up rate',
          'recovery',
          'max in flight',
          'publish errors',
        ],
        [
          `${o.brokerDownS} s`,
          String(o.written),
          `${o.distinctOnTopic}/${o.recordsOnTopic}`,
          o.allArrived ? 'yes' : 'NO',
          String(o.backlogAtRecovery),
          `${fmt(o.catchUpRate)}/s`,
          `${fmt(o.recoveryS, 1)} s`,
          String(o.maxInFlightDuringOutage),
          String(o.publishErrors),
        ],
      ]),
    );
    out.push(
      `  RSS MB: before peak ${fmt(o.rss.before.peakMB, 1)}; first 30 s of the outage peak ${fmt(o.rss.first30s.peakMB, 1)}; whole outage peak ${fmt(o.rss.during.peakMB, 1)} (steady ${fmt(o.rss.during.steadyMB, 1)}); after recovery peak ${fmt(o.rss.after.peakMB, 1)} (steady ${fmt(o.rss.after.steadyMB, 1)})`,
    );
  }

  const p = r.profile;
  if (p) {
    out.push(
      '',
      `CPU profile: ${p.run.mode} backlog run, ${label(p.run.size)} × ${p.run.n} (profiled rate ${fmt(p.run.rate)}/s, ` +
        `relay CPU ${fmt(p.run.cpuUsPerEvent, 1)} µs/event)`,
    );
    for (const t of p.threads) out.push(`[${t.thread} thread] ${formatProfile(t.summary)}`);
  }

  out.push(...renderConsumerBench(r.consumer));
  if (r.sideBySide) out.push('', renderSideBySide(r.sideBySide));
  out.push('', 'Targets (issue 9)');
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
    settings: {
      ...SETTINGS,
      relayRoot: relayRoot(),
      relayBuild:
        (process.env.BENCH_RELAY_TSX === '1' ? 'sources through tsx' : 'compiled (tsconfig.build.json)') +
        `, NODE_OPTIONS=${JSON.stringify(relayNodeOptions())}`,
      quick: QUICK,
    },
    rawRead: {},
    rawProduce: {},
    roundTrips: {},
    relay: { continuous: {}, serial: {}, batched: {} },
    ratios: { continuous: {}, serial: {}, batched: {} },
    exactlyOnce: {},
    exactlyOnceLarge: {},
    latency: {},
    crash: {},
    memory: { runs: [] },
    targets: [],
    errors: [],
  };

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-'));
  onCleanup(`rm ${tmp}`, () => rm(tmp, { recursive: true, force: true }));
  log(`compiling the relay (${relayRoot()}) and starting services (temp dir ${tmp}) ...`);
  const [svc] = await Promise.all([startServices(tmp), buildRelay()]);
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
  const ctx = {
    client,
    mongoUri: svc.mongoUri,
    brokers: svc.brokers,
    kafkaPid: svc.kafkaPid,
    mongoPid: svc.mongoPid,
  };

  // `npm run bench -- --anchors`: only the side-by-side runs with Debezium (issue 21).
  if (process.argv.includes('--anchors')) {
    const anchors = await sideBySide(ctx, kafka, log);
    console.log(renderSideBySide(anchors));
    await writeResults(startedAt, `anchors-${svc.mongoKind}`, { machine: results.machine, anchors });
    return anchors.rows.some((r) => r.errors.length > 0) ? 1 : 0;
  }

  // (a) + (b); 1,000 real 200-B events are kept for the round-trip measurement before the serial runs.
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

  // (c) relay backlog runs, every mode.
  for (const mode of CHECKPOINT_MODES) {
    if (mode === 'serial' && rttEvents.length > 0) {
      // What serial mode waits for per event, measured right before the serial runs: one 1-record
      // acks=all produce request and one fenced checkpoint updateOne, one after the other.
      const events = rttEvents;
      const k = await phase(results, 'Kafka one-record round trip', () => kafkaRoundTrip(kafka, events));
      const mo = await phase(results, 'MongoDB checkpoint-write round trip', () =>
        mongoWriteRoundTrip(client),
      );
      if (k) results.roundTrips.kafkaOneRecordMs = k;
      if (mo) results.roundTrips.mongoCheckpointWriteMs = mo;
      if (k && mo) results.roundTrips.serialBoundPerS = round(1000 / (k.mean + mo.mean), 0);
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
        `  ${run.rate}/s, relay ${run.cpuUsPerEvent} µs/event (machine ${run.machineCpuUsPerEvent}), ${run.checkpointWrites} checkpoint writes, RSS peak ${run.rss.peakMB} MB`,
      );
    }
  }

  // (c) exactly-once: the default mode's backlog with RELAY_DELIVERY=exactly-once, same run — with the
  // default in-flight limits, and with the larger ones that let a transaction span more events.
  for (const [key, limits] of [
    ['exactlyOnce', {}],
    ['exactlyOnceLarge', EO_LARGE_LIMITS],
  ] as const)
    for (const size of SIZES) {
      const n = SETTINGS.relayN[DEFAULT_MODE][size];
      const what = key === 'exactlyOnce' ? 'exactly-once' : 'exactly-once, larger in-flight limits';
      const run = await phase(results, `(c) relay ${what} ${label(size)} × ${n}`, () =>
        relayBacklogRun(ctx, {
          mode: DEFAULT_MODE,
          size,
          n,
          extra: { RELAY_DELIVERY: 'exactly-once', KAFKA_POSITIONS_TOPIC: 'bench.positions', ...limits },
        }),
      );
      if (!run) continue;
      const base = results.relay[DEFAULT_MODE][size]?.rate;
      const summary = { ...withoutSamples(run), ...(base ? { vsDefault: round(run.rate / base, 2) } : {}) };
      results[key][size] = summary;
      results.memory.runs.push({ run: `(c) ${what} ${label(size)}`, ...run.rss });
      log(`  ${run.rate}/s (÷ default ${summary.vsDefault ?? '?'}), relay ${run.cpuUsPerEvent} µs/event`);
    }

  // The anchors' workload.
  const an = SETTINGS.anchor;
  const anchor = await phase(
    results,
    `(c') anchors' workload: ${label(an.size)} × ${an.n}, inserts + updates`,
    () =>
      relayBacklogRun(ctx, {
        mode: an.mode,
        size: an.size,
        n: an.n,
        workload: 'insert-update',
        timeoutMs: 300_000,
      }),
  );
  if (anchor) {
    results.anchor = { ...withoutSamples(anchor), anchors: ANCHORS };
    results.memory.runs.push({ run: `(c') anchors' workload, ${an.mode}`, ...anchor.rss });
    log(`  ${anchor.rate}/s, RSS peak ${anchor.rss.peakMB} MB`);
  }

  // (c'') the initial snapshot: documents copied per second.
  const sn = { mode: DEFAULT_MODE, size: SETTINGS.anchor.size, n: SETTINGS.anchor.n };
  const snap = await phase(results, `(c'') snapshot: ${label(sn.size)} × ${sn.n} documents`, () =>
    snapshotRun(ctx, sn),
  );
  if (snap) {
    results.snapshot = snap;
    log(`  ${snap.docsPerS} docs/s (${snap.copied} in ${snap.seconds} s)`);
  }

  // (d) latency at a fixed rate.
  for (const mode of CHECKPOINT_MODES) {
    const l = await phase(results, `(d) latency ${mode} at ${SETTINGS.latency.rate}/s`, () =>
      latencyRun(ctx, kafka, { mode, ...SETTINGS.latency }),
    );
    if (!l) continue;
    results.latency[mode] = l;
    results.memory.runs.push({ run: `(d) latency ${mode}`, ...l.rss });
    log(
      `  commit→ack p50 ${l.segmentsMs.toKafka.p50} ms, p99 ${l.segmentsMs.toKafka.p99} ms (${l.received}/${l.written})`,
    );
  }

  // (g) the consumer helper against a raw kafkajs consumer (bench/consumerRun.ts).
  // The helper as shipped: the compiled build, like the relay's runs (BENCH_RELAY_TSX=1: the sources).
  results.consumer = await phase(results, '(g) consumer helper vs raw kafkajs consumer', async () => {
    const consumerModule = (await import(relayModuleUrl('consumer/index'))) as ConsumerModule;
    return consumerBench({ ...ctx, consumerModule }, { n: scale(20000), size: 200, log });
  });

  // (f) duplicates after a SIGKILL, every mode.
  for (const mode of CHECKPOINT_MODES) {
    const n = SETTINGS.crash.n[mode];
    const c = await phase(results, `(f) SIGKILL mid-stream, ${mode}, ${n} changes`, () =>
      crashRun(ctx, kafka, { mode, size: SETTINGS.crash.size, n }),
    );
    if (c) {
      results.crash[mode] = c;
      log(`  lost ${c.lost}, duplicates ${c.duplicates} (bound ${c.bound})`);
    }
  }

  // Profile the default mode when a target is missed.
  evaluateTargets(results);
  const missed = results.targets.some((t) => !t.met);
  const profileWanted =
    process.env.BENCH_PROFILE === 'always' || (process.env.BENCH_PROFILE !== 'never' && missed);
  results.targets = [];
  if (profileWanted) {
    const o = SETTINGS.profile;
    const p = await phase(results, `CPU profile of a ${o.mode} ${label(o.size)} × ${o.n} backlog run`, () =>
      profiledBacklogRun(ctx, o),
    );
    if (p) results.profile = { run: withoutSamples(p.run), threads: p.summaries };
  }

  // (e) Kafka outage, catch-up after it.
  const outage = await phase(results, `(e) Kafka outage ${SETTINGS.outage.outageS} s`, () =>
    outageRun(ctx, { ...SETTINGS.outage, log }),
  );
  if (outage) {
    results.outage = outage;
    results.memory.runs.push({ run: '(e) outage: before', ...outage.rss.before });
    results.memory.runs.push({ run: '(e) outage: first 30 s', ...outage.rss.first30s });
    results.memory.runs.push({ run: '(e) outage: whole outage', ...outage.rss.during });
    results.memory.runs.push({ run: '(e) outage: catch-up and after', ...outage.rss.after });
  }

  // (f) Debezium beside the relay on the 200-B backlog: the headline workload of `--anchors`, which runs
  // all three (each of the others costs about three more minutes of the full run's budget).
  if (!QUICK && !process.argv.includes('--no-anchors')) {
    const anchors = await phase(results, '(f) anchors: Debezium side by side, 200 B inserts', () =>
      sideBySide(ctx, kafka, log, ANCHOR_WORKLOADS.slice(0, 1)),
    );
    if (anchors) {
      results.sideBySide = anchors;
      for (const row of anchors.rows)
        for (const e of row.errors) results.errors.push({ phase: '(f) anchors', error: e });
    }
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

  await writeResults(startedAt, `${svc.mongoKind}${QUICK ? '-quick' : ''}`, results);
  return results.errors.length > 0 ? 1 : 0;
}

/** bench/results/<ISO start time>-<name>.json (committed: the README's figures cite these files). */
async function writeResults(startedAt: Date, name: string, data: unknown): Promise<void> {
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const stamp = startedAt
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const file = path.join(dir, `${stamp}-${name}.json`);
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
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
