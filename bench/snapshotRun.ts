/**
 * Bench phase: the initial snapshot's copy rate (RELAY_SNAPSHOT=initial, issue 15). A collection of
 * `n` documents is written first; a relay starts without a checkpoint, copies it to Kafka and
 * checkpoints it. The rate is documents / (completion − start of the copy), both as the relay stored
 * them in its checkpoint document (`snapshot.startedAt`, `snapshot.completedAt`), so it includes the
 * Kafka connection at start but no process start-up.
 */
import type { Document } from 'mongodb';
import { spawnRelay, type BenchContext, type CheckpointMode } from './relayRun.js';
import { BENCH_DB, benchCollection, insertBacklog, round, sleep, uniqueName } from './support.js';

/** The anchor: the MongoDB Kafka connector's copy_existing (ConduitIO streaming-benchmarks, 2025). */
export const SNAPSHOT_ANCHOR = {
  name: 'MongoDB Kafka connector copy_existing',
  perS: 20_600,
  hardware: '4 vCPU',
};

export interface SnapshotRunResult {
  mode: CheckpointMode;
  size: number;
  n: number;
  copied: number;
  seconds: number;
  docsPerS: number;
  anchor: typeof SNAPSHOT_ANCHOR;
}

export async function snapshotRun(
  ctx: BenchContext,
  o: { mode: CheckpointMode; size: number; n: number; timeoutMs?: number },
): Promise<SnapshotRunResult> {
  const name = uniqueName('snapshot');
  const coll = benchCollection(ctx.client, name);
  await insertBacklog(coll, o.size, o.n);
  const checkpointId = uniqueName('bench-snapshot');
  const relay = await spawnRelay({
    ctx,
    watch: `${BENCH_DB}.${name}`,
    mode: o.mode,
    startAfterToken: '',
    checkpointId,
    extra: { RELAY_SNAPSHOT: 'initial', KAFKA_TOPIC: `bench.snapshot.${name}` },
  });
  const checkpoints = ctx.client.db('mongo_kafka_relay').collection<Document>('checkpoints');
  try {
    const deadline = performance.now() + (o.timeoutMs ?? 300_000);
    for (;;) {
      const cp = await checkpoints.findOne({ _id: checkpointId as never });
      const s = cp?.snapshot as
        { state?: string; startedAt?: Date; completedAt?: Date; cursor?: { copied?: number } } | undefined;
      if (s?.state === 'done' && s.startedAt && s.completedAt) {
        const seconds = (s.completedAt.getTime() - s.startedAt.getTime()) / 1000;
        const copied = s.cursor?.copied ?? o.n;
        return {
          mode: o.mode,
          size: o.size,
          n: o.n,
          copied,
          seconds: round(seconds, 2),
          docsPerS: round(copied / seconds, 0),
          anchor: SNAPSHOT_ANCHOR,
        };
      }
      if (relay.child.exitCode !== null)
        throw new Error(`the relay exited during the snapshot:\n${relay.tail()}`);
      if (performance.now() > deadline)
        throw new Error(`the snapshot did not complete in time:\n${relay.tail()}`);
      await sleep(200);
    }
  } finally {
    await relay.stop();
    await coll.drop().catch(() => undefined);
    await checkpoints.deleteOne({ _id: checkpointId as never }).catch(() => undefined);
  }
}
