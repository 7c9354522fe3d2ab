/** Reading the checkpoint store from the CLI, and showing a checkpoint to a person or a script. */
import { MongoClient } from 'mongodb';
import type { RelayConfig } from '../config/settings.js';
import { redactUri } from '../config/redact.js';
import { CheckpointStore, type CheckpointDoc } from '../checkpoint/checkpointStore.js';
import { formatClusterTime, clusterTimeOfToken } from '../source/resumeToken.js';
import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';
import { cliMongo } from './mongoOptions.js';
import {
  describeSnapshot,
  describeSnapshotRequest,
  snapshotLines,
  type SnapshotRequestView,
  type SnapshotView,
} from './snapshotView.js';

export async function withStore<T>(
  config: RelayConfig,
  work: (store: CheckpointStore) => Promise<T>,
): Promise<T> {
  const uri = config.derived.checkpointUri;
  const client = new MongoClient(uri, cliMongo(uri, 'mongo-kafka-relay-cli').options);
  try {
    try {
      await client.connect();
    } catch (error) {
      throw new RelayExit(
        `cannot reach the checkpoint store at ${redactUri(uri)}: ${(error as Error).message}`,
        ExitCode.failure,
      );
    }
    return await work(
      new CheckpointStore(
        client,
        config.checkpoint.database,
        config.checkpoint.collection,
        config.derived.checkpointId,
      ),
    );
  } finally {
    await client.close();
  }
}

export interface CheckpointView {
  checkpointId: string;
  exists: boolean;
  token: string | null;
  clusterTime: string | null;
  writtenAt: string | null;
  lagSeconds: number | null;
  counts: CheckpointDoc['counts'] | null;
  watch: string[] | null;
  setBy: string | null;
  lease: { owner: string; host: string; expiresAt: string; live: boolean } | null;
  /** The current or last snapshot's progress. */
  snapshot: SnapshotView | null;
  /** A snapshot requested (`mongo-kafka-relay snapshot`) and not yet started. */
  snapshotRequest: SnapshotRequestView | null;
}

export function describeCheckpoint(store: CheckpointStore, doc: CheckpointDoc | null): CheckpointView {
  // The token's own time (when its format tells it) is where the stream stands: on a quiet stream the
  // heartbeat moves it past the last event's cluster time, and the lag should say so.
  const tokenTime = doc?.token ? clusterTimeOfToken(doc.token) : null;
  const eventTime = doc?.clusterTime ?? null;
  const ts = tokenTime && (!eventTime || tokenTime.greaterThan(eventTime)) ? tokenTime : eventTime;
  const lease = doc?.lease;
  return {
    checkpointId: store.checkpointId,
    exists: doc !== null,
    token: doc?.token?._data ?? null,
    clusterTime: formatClusterTime(ts),
    writtenAt: doc?.writtenAt ? doc.writtenAt.toISOString() : null,
    lagSeconds: ts ? Math.max(0, Math.round(Date.now() / 1000 - ts.high)) : null,
    counts: doc?.counts ?? null,
    watch: doc?.watch ?? null,
    setBy: doc?.setBy ?? null,
    lease: lease
      ? {
          owner: lease.owner,
          host: lease.host,
          expiresAt: lease.expiresAt.toISOString(),
          live: lease.expiresAt.getTime() > Date.now(),
        }
      : null,
    snapshot: describeSnapshot(doc?.snapshot),
    snapshotRequest: describeSnapshotRequest(doc?.snapshotRequest),
  };
}

export function printCheckpoint(view: CheckpointView, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return;
  }
  const lines = [`checkpoint   ${view.checkpointId}`];
  if (!view.exists || !view.token) {
    lines.push('token        (none: the next start begins at RELAY_START_AT)');
  } else {
    lines.push(`token        ${view.token}`);
    lines.push(`cluster time ${view.clusterTime ?? 'unknown'}`);
    lines.push(`written at   ${view.writtenAt ?? 'unknown'}${view.setBy ? ` (set by ${view.setBy})` : ''}`);
    lines.push(`lag          ${view.lagSeconds === null ? 'unknown' : `${view.lagSeconds} s behind now`}`);
    if (view.counts) {
      lines.push(
        `counts       published ${view.counts.published ?? 0}, filtered ${view.counts.filtered ?? 0}, dead-lettered ${view.counts.deadLettered ?? 0}`,
      );
    }
    if (view.watch) lines.push(`watch        ${view.watch.join(',')}`);
  }
  lines.push(
    view.lease
      ? `lease        ${view.lease.live ? 'held' : 'expired'}: ${view.lease.owner} (until ${view.lease.expiresAt})`
      : 'lease        free',
  );
  lines.push(...snapshotLines(view.snapshot, view.snapshotRequest));
  process.stdout.write(`${lines.join('\n')}\n`);
}
