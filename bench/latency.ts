/**
 * (d) End-to-end latency at a fixed moderate rate. The bench writes single inserts at `rate`/s, each
 * carrying t0 = Date.now() taken just before insertOne (so the figure includes the MongoDB commit); a
 * kafkajs consumer (maxWaitTimeInMs 10) on the relay's topic takes the receive time of each fetch
 * response: latency = receivedAt − t0 (same host, same clock). Writes are paced (insert i issued at
 * start + i/rate, up to 16 outstanding). A 2-second warm-up at the same rate (marked `warm`, excluded)
 * runs first, so JIT, topic metadata and connections are not part of the figures.
 * The relay's own view, read → Kafka acknowledged, comes from its publish-latency histogram (difference of
 * two scrapes around the measured phase, quantiles interpolated inside buckets like histogram_quantile).
 */
import type { Kafka } from 'kafkajs';
import { createTopic, readTopic, type ReceivedRecord } from './kafkaTools.js';
import { spawnRelay, waitReady, type BenchContext, type CheckpointMode } from './relayRun.js';
import {
  BENCH_DB,
  METRIC,
  MetricsSampler,
  benchCollection,
  bucketsDiff,
  currentToken,
  distribution,
  histogramBuckets,
  histogramQuantile,
  pacedInserts,
  round,
  rssFigures,
  sleep,
  uniqueName,
  type Distribution,
  type RssFigures,
} from './support.js';

export interface LatencyResult {
  mode: CheckpointMode;
  size: number;
  targetRate: number;
  /** Rate the bench actually wrote at. */
  writeRate: number;
  written: number;
  received: number;
  /** t0 (just before insertOne) → consumer received, ms. */
  endToEndMs: Distribution;
  /** Relay read → Kafka acknowledged, from its histogram (ms, bucket-interpolated). */
  relayPublishMs: { p50: number; p99: number; count: number };
  /**
   * The end-to-end latency split by two timestamps carried with each record: the event's wallTime
   * (MongoDB's commit clock) and the Kafka record timestamp, which the bench's topic sets to the
   * broker's append time (message.timestamp.type=LogAppendTime): the moment Kafka took the record,
   * just before it acknowledges it. commit: t0 → wallTime (the insert's round trip to its commit);
   * toKafka: wallTime → appended, i.e. commit → Kafka ack (change stream delivery, relay read and
   * conversion, sink queue, produce request); kafkaToConsumer: appended → consumer received.
   * Millisecond clocks on one host; a stand-in's wallTime may be taken at a slightly different point.
   */
  segmentsMs: { commit: ShortDist; toKafka: ShortDist; kafkaToConsumer: ShortDist };
  /** End-to-end latency by the second (of t0) in which the change was written. */
  perSecond: { second: number; count: number; p50: number; p99: number; max: number }[];
  /** Last write → last record received, s (how long the relay needed to catch up). */
  drainS: number;
  rss: RssFigures;
  /**
   * The relay's event-loop delay while measuring (prom-client, per 250 ms scrape interval): the worst
   * interval's p99 and the single worst delay. Large values mean the relay itself was blocked or not
   * scheduled (GC, CPU contention), not waiting on Kafka or MongoDB.
   */
  relayLoopLagMs: { worstP99: number; max: number };
  errors: string[];
}

interface BenchEvent {
  fullDocument?: { seq?: number; t0?: number; warm?: boolean };
  /** Relaxed EJSON of a Date: {"$date": "<ISO>"} (or epoch ms). */
  wallTime?: { $date?: string | number };
}

function wallTimeMs(e: BenchEvent): number | null {
  const d = e.wallTime?.$date;
  if (d === undefined) return null;
  return typeof d === 'number' ? d : Date.parse(d);
}

export async function latencyRun(
  ctx: BenchContext,
  kafka: Kafka,
  o: { mode: CheckpointMode; rate: number; seconds: number; size: number; drainTimeoutMs?: number },
): Promise<LatencyResult> {
  const collName = uniqueName(`lat_${o.mode}`);
  const coll = benchCollection(ctx.client, collName);
  const topic = `mongo.${BENCH_DB}.${collName}`;
  await createTopic(kafka, topic, undefined, { 'message.timestamp.type': 'LogAppendTime' });
  const token = await currentToken(coll);

  const latencies = new Map<number, number>();
  const issuedAt = new Map<number, number>();
  let warmSeen = 0;
  let lastReceivedAt = 0;
  const segments = { commit: [] as number[], toKafka: [] as number[], kafkaToConsumer: [] as number[] };
  const onRecord = (r: ReceivedRecord): void => {
    const event = JSON.parse(r.value) as BenchEvent;
    const doc = event.fullDocument;
    if (!doc || doc.seq === undefined || doc.t0 === undefined) return;
    if (doc.warm) {
      warmSeen += 1;
      return;
    }
    if (!latencies.has(doc.seq)) {
      latencies.set(doc.seq, r.receivedAt - doc.t0);
      issuedAt.set(doc.seq, doc.t0);
      const wall = wallTimeMs(event);
      if (wall !== null && r.timestamp > 0) {
        segments.commit.push(wall - doc.t0);
        segments.toKafka.push(r.timestamp - wall);
        segments.kafkaToConsumer.push(r.receivedAt - r.timestamp);
      }
    }
    lastReceivedAt = r.receivedAt;
  };

  const [relay, reader] = await Promise.all([
    spawnRelay({ ctx, watch: `${BENCH_DB}.${collName}`, mode: o.mode, startAfterToken: token._data }),
    readTopic(kafka, topic, onRecord, 10),
  ]);
  const sampler = new MetricsSampler(relay.port, 250).start();
  try {
    await waitReady(relay);
    // Warm-up: 2 s at the same rate (JIT, connections, topic metadata), excluded from the figures.
    const warm = await pacedInserts(coll, { size: o.size, rate: o.rate, count: o.rate * 2, warm: true });
    await waitUntil(() => warmSeen >= warm.written, 60_000, 'the warm-up changes to reach the consumer');
    const before = histogramBuckets(await sampler.scrape(), METRIC.publishLatency);

    const n = Math.round(o.rate * o.seconds);
    const measuredStart = Date.now();
    const measuredStartPerf = performance.now();
    const written = await pacedInserts(coll, { size: o.size, rate: o.rate, count: n });
    const writeEndWall = Date.now();
    await waitUntil(
      () => latencies.size >= n,
      o.drainTimeoutMs ?? 120_000,
      `${n} changes to reach the consumer`,
    ).catch(
      () => undefined, // reported as received < written
    );
    const after = histogramBuckets(await sampler.scrape(), METRIC.publishLatency);
    const diff = bucketsDiff(after, before);
    const d = distribution([...latencies.values()]);
    return {
      mode: o.mode,
      size: o.size,
      targetRate: o.rate,
      writeRate: round(written.rate, 0),
      written: n,
      received: latencies.size,
      endToEndMs: {
        count: d.count,
        p50: round(d.p50),
        p99: round(d.p99),
        max: round(d.max),
        mean: round(d.mean),
      },
      relayPublishMs: {
        p50: round(histogramQuantile(diff, 0.5) * 1000, 2),
        p99: round(histogramQuantile(diff, 0.99) * 1000, 2),
        count: diff.at(-1)?.count ?? 0,
      },
      segmentsMs: {
        commit: short(distribution(segments.commit)),
        toKafka: short(distribution(segments.toKafka)),
        kafkaToConsumer: short(distribution(segments.kafkaToConsumer)),
      },
      perSecond: perSecond(latencies, issuedAt, measuredStart),
      drainS: round(Math.max(0, lastReceivedAt - writeEndWall) / 1000, 2),
      rss: rssFigures(sampler.samples),
      relayLoopLagMs: loopLag(sampler.samples.filter((x) => x.at >= measuredStartPerf)),
      errors: relay.errors,
    };
  } finally {
    await sampler.stop();
    await reader.stop().catch(() => undefined);
    await relay.stop();
    await coll.drop().catch(() => undefined);
  }
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function perSecond(
  latencies: Map<number, number>,
  issuedAt: Map<number, number>,
  start: number,
): LatencyResult['perSecond'] {
  const buckets = new Map<number, number[]>();
  for (const [seq, ms] of latencies) {
    const second = Math.floor((issuedAt.get(seq)! - start) / 1000);
    const list = buckets.get(second) ?? [];
    list.push(ms);
    buckets.set(second, list);
  }
  return [...buckets]
    .sort((a, b) => a[0] - b[0])
    .map(([second, values]) => {
      const d = distribution(values);
      return { second, count: d.count, p50: round(d.p50), p99: round(d.p99), max: round(d.max) };
    });
}

type ShortDist = { p50: number; p99: number; max: number };

function short(d: Distribution): ShortDist {
  return { p50: round(d.p50), p99: round(d.p99), max: round(d.max) };
}

function loopLag(samples: { loopLagP99: number; loopLagMax: number }[]): LatencyResult['relayLoopLagMs'] {
  return {
    worstP99: round(Math.max(0, ...samples.map((x) => x.loopLagP99)) * 1000),
    max: round(Math.max(0, ...samples.map((x) => x.loopLagMax)) * 1000),
  };
}
