/**
 * One Debezium backlog run, measured as the relay's are (bench/relayRun.ts): the same backlog written
 * before the connector starts, the same broker and partitions, process CPU time from /proc and RSS of
 * the worker's JVM. The worker first runs once to take a position (a marker change), is stopped
 * gracefully (it flushes its offsets), the backlog is written, and the measured run resumes from there,
 * just as the relay's runs resume from a token taken before the backlog.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { createTopic, readTopic, RELAY_DEFAULT_PARTITIONS } from '../kafkaTools.js';
import type { BenchContext, Workload } from '../relayRun.js';
import {
  BENCH_DB,
  MB,
  benchCollection,
  insertBacklog,
  processCpuSeconds,
  round,
  sleep,
  uniqueName,
  updateBacklog,
  onCleanup,
} from '../support.js';
import { startDebezium, type ConnectWorker } from '../../scripts/kafka-connect/connectWorker.js';

export interface AnchorRunResult {
  system: string;
  workload: Workload;
  size: number;
  n: number;
  /** Changes/s between the first and the last backlog record reaching the topic. */
  rate: number;
  seconds: number;
  /** Worker CPU (user + system, /proc/<pid>/stat) per change over that window, µs. */
  cpuUsPerChange: number;
  /** The same for the Kafka broker and MongoDB in that window (NaN: pid unknown). */
  serverCpuUsPerChange: { kafka: number; mongo: number };
  /** Spawn of the measured worker to its first backlog record on the topic (JVM, Connect, connector). */
  startupS: number;
  /** Highest resident set of the worker's JVM over its life (VmHWM), MB. */
  rssPeakMB: number;
  records: number;
}

interface Sample {
  at: number;
  count: number;
  cpu: number;
  kafkaCpu: number;
  mongoCpu: number;
}

function peakRssMB(pid: number): number {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? round((Number(kb) * 1024) / MB) : NaN;
  } catch {
    return NaN;
  }
}

const MARKER = 'debezium-bench-marker';

/**
 * Debezium refuses a replica set whose name the connection string does not give ("Replica set not
 * specified in connection string", then a failed validation), so the bench adds the name `hello` reports.
 */
async function withReplicaSet(ctx: BenchContext): Promise<string> {
  const url = new URL(ctx.mongoUri);
  const hello = await ctx.client.db('admin').command({ hello: 1 });
  if (typeof hello.setName === 'string' && !url.searchParams.has('replicaSet'))
    url.searchParams.set('replicaSet', hello.setName);
  return url.toString();
}

export async function debeziumBacklogRun(
  ctx: BenchContext,
  kafka: Kafka,
  libs: string,
  o: { size: number; n: number; workload: Workload; timeoutMs?: number },
): Promise<AnchorRunResult> {
  const collName = uniqueName(`debezium_${o.size}`);
  const coll = benchCollection(ctx.client, collName);
  const prefix = uniqueName('dbz');
  const topic = `${prefix}.${BENCH_DB}.${collName}`;
  await createTopic(kafka, topic, RELAY_DEFAULT_PARTITIONS);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-connect-'));
  const settings = {
    brokers: ctx.brokers,
    mongoUri: await withReplicaSet(ctx),
    collection: `${BENCH_DB}.${collName}`,
    topicPrefix: prefix,
    dir,
  };
  let worker: ConnectWorker | null = null;
  let unregisterMeasured: (() => void) | undefined;
  let count = 0;
  let markers = 0;
  let firstAt = NaN;
  let lastAt = NaN;
  const reader = await readTopic(kafka, topic, (r) => {
    if (r.key.includes(MARKER)) return void markers++;
    count++;
    const now = performance.now();
    if (count === 1) firstAt = now;
    lastAt = now;
  });
  const untilExit = (w: ConnectWorker): Promise<never> =>
    w.exited.then((code) => {
      throw new Error(`the Kafka Connect worker exited (code ${code}):\n${w.tail()}`);
    });
  try {
    // Take a position: the collection must exist (the connector's validation lists databases), then
    // markers until one reaches the topic, since `no_data` streams from the moment the task starts.
    await coll.db.collection(collName).insertOne({ _id: `${MARKER}-0` } as never);
    worker = await startDebezium(libs, settings);
    // A SIGINT or the watchdog runs the cleanups, not this function's finally: the JVM must be on the list.
    const positioning = worker;
    const unregisterFirst = onCleanup(`Connect worker pid ${positioning.pid}`, () =>
      positioning.stop().then(() => undefined),
    );
    const positioned = (async () => {
      const deadline = performance.now() + (o.timeoutMs ?? 180_000);
      for (let i = 1; markers === 0; i++) {
        if (performance.now() > deadline) throw new Error(`no marker reached ${topic}:\n${worker!.tail()}`);
        await coll.db.collection(collName).insertOne({ _id: `${MARKER}-${i}` } as never);
        await sleep(1000);
      }
    })();
    await Promise.race([positioned, untilExit(worker)]);
    await sleep(2500); // two offset flushes
    await worker.stop();
    worker = null;

    // The markers go before the backlog (their changes are not counted): updateBacklog updates the
    // first documents in _id order, and string _ids sort before ObjectIds.
    await coll.db.collection(collName).deleteMany({ _id: { $regex: `^${MARKER}` } } as never);
    if (o.workload === 'insert-update') {
      await insertBacklog(coll, o.size, Math.ceil(o.n / 2));
      await updateBacklog(coll, Math.floor(o.n / 2));
    } else await insertBacklog(coll, o.size, o.n);

    const measured = await startDebezium(libs, settings);
    worker = measured;
    unregisterFirst();
    unregisterMeasured = onCleanup(`Connect worker pid ${measured.pid}`, () =>
      measured.stop().then(() => undefined),
    );
    const samples: Sample[] = [];
    const sample = (): void => {
      samples.push({
        at: performance.now(),
        count,
        cpu: processCpuSeconds(measured.pid),
        kafkaCpu: processCpuSeconds(ctx.kafkaPid),
        mongoCpu: processCpuSeconds(ctx.mongoPid),
      });
    };
    const drained = (async () => {
      const deadline = performance.now() + (o.timeoutMs ?? 180_000);
      while (count < o.n) {
        if (performance.now() > deadline)
          throw new Error(`${count} of ${o.n} changes reached ${topic} in time:\n${measured.tail()}`);
        sample();
        await sleep(250);
      }
      sample();
    })();
    await Promise.race([drained, untilExit(measured)]);
    const rssPeakMB = peakRssMB(measured.pid);
    // The window: from the first sample that saw a record to the last that saw fewer than n.
    const first = samples.find((s) => s.count > 0)!;
    const end = samples.filter((s) => s.count < o.n).at(-1) ?? samples.at(-1)!;
    const changes = end.count - first.count;
    const per = (seconds: number): number => (changes > 0 ? round((seconds * 1e6) / changes, 1) : NaN);
    const seconds = (lastAt - firstAt) / 1000;
    return {
      system: 'Debezium MongoDB connector',
      workload: o.workload,
      size: o.size,
      n: o.n,
      rate: round((count - 1) / seconds, 0),
      seconds: round(seconds, 3),
      cpuUsPerChange: per(end.cpu - first.cpu),
      serverCpuUsPerChange: {
        kafka: per(end.kafkaCpu - first.kafkaCpu),
        mongo: per(end.mongoCpu - first.mongoCpu),
      },
      startupS: round((firstAt - measured.spawnedAt) / 1000, 2),
      rssPeakMB,
      records: count,
    };
  } finally {
    await worker?.stop();
    unregisterMeasured?.();
    await reader.stop();
    await rm(dir, { recursive: true, force: true });
    await coll.drop().catch(() => undefined);
  }
}
