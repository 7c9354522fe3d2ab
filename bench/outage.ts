/**
 * (e) A Kafka outage under write load. A dedicated broker is started in a temp dir (the shared one is
 * never touched), the relay (default mode and limits) relays a steady stream of inserts; the broker is
 * stopped (KafkaService.stop()), kept down for `outageS`, started again (KafkaService.start(), same
 * ports and data), writes go on for a few seconds, then stop. RSS is sampled every 250 ms before, during
 * (the first 30 s, and the whole outage) and after it. Catch-up: the backlog that built up is drained at
 * `catchUpRate` (events/s from the first acknowledgement after the broker is back to the moment the relay
 * has caught up with the writes). At the end every written change must be on the topic (distinct
 * documents counted by a consumer reading the topic from the beginning).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTopic, kafkaClient, readTopic, startBenchKafka } from './kafkaTools.js';
import type { CheckpointMode } from '../src/config/schema.js';
import { spawnRelay, waitReady, type BenchContext } from './relayRun.js';
import {
  BENCH_DB,
  MetricsSampler,
  benchCollection,
  currentToken,
  pacedInserts,
  onCleanup,
  round,
  rssFigures,
  sleep,
  uniqueName,
  withTimeout,
  type RssFigures,
} from './support.js';

export interface OutageResult {
  mode: CheckpointMode;
  targetRate: number;
  writeRate: number;
  /** Broker process gone → start() called, s. */
  brokerDownS: number;
  /** stop() called → broker start() returned ready, s. */
  unavailableS: number;
  written: number;
  /** mongo_kafka_relay_events_total at the end. */
  relayed: number;
  /** Distinct documents found on the topic. */
  distinctOnTopic: number;
  recordsOnTopic: number;
  allArrived: boolean;
  /** Broker ready again → every written change acknowledged, s. */
  recoveryS: number;
  /** Events not yet acknowledged when the broker was ready again. */
  backlogAtRecovery: number;
  /** Events/s from the first acknowledgement after the outage until caught up. */
  catchUpRate: number;
  maxInFlightDuringOutage: number;
  publishErrors: number;
  rss: { before: RssFigures; first30s: RssFigures; during: RssFigures; after: RssFigures };
  relayExitCode: number | null;
  errors: string[];
}

export async function outageRun(
  ctx: BenchContext,
  o: { mode: CheckpointMode; rate: number; outageS: number; size: number; log: (line: string) => void },
): Promise<OutageResult> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'relay-bench-kafka-'));
  const removeDir = onCleanup(`rm ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }));
  const broker = await startBenchKafka(dataDir, o.log);
  const stopBroker = onCleanup(`dedicated kafka pid ${broker.pid}`, () => broker.stop());
  try {
    const kafka = kafkaClient(broker.brokers, 'relay-bench-outage');
    const collName = uniqueName('outage');
    const coll = benchCollection(ctx.client, collName);
    const topic = `mongo.${BENCH_DB}.${collName}`;
    await createTopic(kafka, topic);
    const token = await currentToken(coll);
    const relay = await spawnRelay({
      ctx,
      brokers: broker.brokers,
      watch: `${BENCH_DB}.${collName}`,
      mode: o.mode,
      startAfterToken: token._data,
    });
    const sampler = new MetricsSampler(relay.port, 250).start();
    try {
      await waitReady(relay);
      let writing = true;
      const writer = pacedInserts(coll, { size: o.size, rate: o.rate, stop: () => !writing });
      writer.catch(() => undefined); // awaited (and rethrown) below; no unhandled rejection meanwhile
      await sleep(5000);
      const tStop = performance.now();
      o.log(`outage: stopping the dedicated broker (pid ${broker.pid})`);
      await broker.stop();
      const tDown = performance.now();
      await sleep(o.outageS * 1000);
      const tStartCall = performance.now();
      o.log('outage: starting the dedicated broker again');
      await broker.start();
      const tUp = performance.now();
      const atUp = sampler.latest();
      const writtenAtUp = await coll.countDocuments();
      await sleep(5000);
      writing = false;
      const { written, rate: writeRate } = await writer;
      const caughtUp = await sampler
        .waitFor((s) => s.events >= written, 120_000, `${written} changes acknowledged after the outage`)
        .catch(() => null);
      const last = sampler.latest();
      const during = sampler.samples.filter((s) => s.at >= tStop && s.at <= tUp);
      const resumed = sampler.samples.find((s) => s.at > tUp && s.events > (atUp?.events ?? 0));
      const catchUpRate =
        caughtUp && resumed && caughtUp.at > resumed.at
          ? (caughtUp.events - resumed.events) / ((caughtUp.at - resumed.at) / 1000)
          : NaN;

      const seqs = new Set<number>();
      let records = 0;
      const reader = await readTopic(
        kafkaClient(broker.brokers, 'relay-bench-outage-reader'),
        topic,
        (r) => {
          records += 1;
          const seq = (JSON.parse(r.value) as { fullDocument?: { seq?: number } }).fullDocument?.seq;
          if (seq !== undefined) seqs.add(seq);
        },
        100,
      );
      await withTimeout(
        (async () => {
          while (seqs.size < written) await sleep(100);
        })(),
        60_000,
        'reading the outage topic back',
      ).catch(() => undefined);
      await reader.stop().catch(() => undefined);

      return {
        mode: o.mode,
        targetRate: o.rate,
        writeRate: round(writeRate, 0),
        brokerDownS: round((tStartCall - tDown) / 1000, 1),
        unavailableS: round((tUp - tStop) / 1000, 1),
        written,
        relayed: last?.events ?? 0,
        distinctOnTopic: seqs.size,
        recordsOnTopic: records,
        allArrived: seqs.size === written && [...seqs].every((s) => s >= 0 && s < written),
        recoveryS: caughtUp ? round((caughtUp.at - tUp) / 1000, 1) : NaN,
        backlogAtRecovery: Math.max(0, writtenAtUp - (atUp?.events ?? 0)),
        catchUpRate: round(catchUpRate, 0),
        maxInFlightDuringOutage: Math.max(0, ...during.map((s) => s.inFlight)),
        publishErrors: last?.publishErrors ?? 0,
        rss: {
          before: rssFigures(sampler.samples, -Infinity, tStop),
          first30s: rssFigures(sampler.samples, tStop, tStop + 30_000),
          during: rssFigures(sampler.samples, tStop, tUp),
          after: rssFigures(sampler.samples, tUp, Infinity),
        },
        relayExitCode: relay.child.exitCode,
        errors: relay.errors,
      };
    } finally {
      await sampler.stop();
      await relay.stop();
      await coll.drop().catch(() => undefined);
    }
  } finally {
    await broker.stop();
    stopBroker();
    await rm(dataDir, { recursive: true, force: true });
    removeDir();
  }
}
