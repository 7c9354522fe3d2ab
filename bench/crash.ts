/**
 * (f) Duplicates after a crash, per checkpoint mode. A backlog of N inserts is written; the relay starts
 * relaying it and is SIGKILLed once half of it is acknowledged (in full flight: in continuous mode up to
 * RELAY_MAX_IN_FLIGHT events are published or unpersisted at that moment); a second relay with the same
 * checkpoint ID then finishes the backlog. The topic is read back from the beginning: every document
 * must be there (lost = 0), and records beyond one per document are the re-publications the crash
 * caused, which each mode bounds (README, Guarantees). The lease TTL is short here so the second relay
 * does not wait 15 s for the dead one's lease.
 */
import type { Kafka } from 'kafkajs';
import type { CheckpointMode } from '../src/config/schema.js';
import { createTopic, readTopic } from './kafkaTools.js';
import { spawnRelay, waitReady, type BenchContext } from './relayRun.js';
import {
  BENCH_DB,
  MetricsSampler,
  benchCollection,
  currentToken,
  insertBacklog,
  round,
  sleep,
  uniqueName,
  withTimeout,
  type Sample,
} from './support.js';

export interface CrashResult {
  mode: CheckpointMode;
  size: number;
  written: number;
  /** Events the first relay had acknowledged (last scrape before the kill). */
  ackedAtKill: number;
  inFlightAtKill: number;
  recordsOnTopic: number;
  distinctOnTopic: number;
  /** recordsOnTopic − distinctOnTopic. */
  duplicates: number;
  /** written − distinctOnTopic: must be 0. */
  lost: number;
  /** The most duplicates the mode allows (README, Guarantees), with these settings. */
  bound: number;
  /** Second relay spawned → every document on the topic, s. */
  recoveryS: number;
  errors: string[];
}

/** What each mode promises a crash re-publishes at most, for the settings the bench runs with. */
export function duplicateBound(mode: CheckpointMode, maxInFlight = 2000, maxEvents = 1000): number {
  if (mode === 'serial') return 1;
  if (mode === 'batched') return Math.min(maxInFlight, maxEvents);
  return maxInFlight;
}

export async function crashRun(
  ctx: BenchContext,
  kafka: Kafka,
  o: { mode: CheckpointMode; size: number; n: number },
): Promise<CrashResult> {
  const collName = uniqueName(`crash_${o.mode}`);
  const coll = benchCollection(ctx.client, collName);
  const topic = `mongo.${BENCH_DB}.${collName}`;
  await createTopic(kafka, topic);
  const token = await currentToken(coll);
  await insertBacklog(coll, o.size, o.n);
  const settings = {
    ctx,
    watch: `${BENCH_DB}.${collName}`,
    mode: o.mode,
    startAfterToken: token._data,
    checkpointId: uniqueName('bench-crash'),
    extra: { RELAY_LEASE_TTL_MS: '3000', RELAY_LEASE_RENEW_MS: '1000' },
  };

  const first = await spawnRelay(settings);
  const sampler = new MetricsSampler(first.port, 20).start();
  let killedAt: Sample;
  try {
    killedAt = await sampler.waitFor((s) => s.events >= o.n / 2, 180_000, `${o.n / 2} events acknowledged`);
    first.child.kill('SIGKILL');
    await first.exited;
  } finally {
    await sampler.stop();
    await first.stop();
  }

  const seqs = new Set<number>();
  let records = 0;
  const reader = await readTopic(
    kafka,
    topic,
    (r) => {
      records += 1;
      const seq = (JSON.parse(r.value) as { fullDocument?: { seq?: number } }).fullDocument?.seq;
      if (seq !== undefined) seqs.add(seq);
    },
    100,
  );
  const second = await spawnRelay(settings);
  const spawnedAt = performance.now();
  try {
    await waitReady(second);
    await withTimeout(
      (async () => {
        while (seqs.size < o.n) await sleep(50);
      })(),
      180_000,
      `all ${o.n} documents on the topic after the restart`,
    ).catch(() => undefined); // reported as lost > 0
    const recoveryS = (performance.now() - spawnedAt) / 1000;
    await second.stop(); // graceful: whatever it still had in flight is acknowledged first
    await sleep(1000); // the reader sees the last acknowledged records
    return {
      mode: o.mode,
      size: o.size,
      written: o.n,
      ackedAtKill: killedAt.events,
      inFlightAtKill: killedAt.inFlight,
      recordsOnTopic: records,
      distinctOnTopic: seqs.size,
      duplicates: records - seqs.size,
      lost: o.n - seqs.size,
      bound: duplicateBound(o.mode),
      recoveryS: round(recoveryS, 1),
      errors: [...first.errors, ...second.errors].filter((e) => !/lease/i.test(e)),
    };
  } finally {
    await reader.stop().catch(() => undefined);
    await second.stop();
    await coll.drop().catch(() => undefined);
  }
}
