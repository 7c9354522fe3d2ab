/**
 * The snapshot's part in a run (src/snapshot/ has the parts themselves): after the stream's concrete
 * start is known, decide whether this run copies documents first, make the plan, and report progress
 * from the checkpoint writes.
 *
 * Order (with checkpointStartup.ts): start resolved -> plan made here -> plan stored WITH the start in
 * one write (persistStart) -> the source reads the snapshot, then the stream from that start. So no
 * change after the start is missed (the stream has it) and a crash at any point resumes the same plan.
 */
import type { Logger } from 'pino';
import type { MongoClient, Timestamp } from 'mongodb';
import type { CheckpointDoc } from '../checkpoint/checkpointStore.js';
import type { RelayConfig } from '../config/settings.js';
import type { SnapshotMetrics } from '../metrics/snapshotMetrics.js';
import type { ConcreteStart } from '../source/changeSource.js';
import { clusterTimeOfToken, sameToken } from '../source/resumeToken.js';
import { formatTarget, parseWatchTargets, targetsInclude, type WatchTarget } from '../config/watchTargets.js';
import {
  collectionsToCopy,
  decideSnapshot,
  estimatedRemaining,
  newPlan,
  type SnapshotCursor,
  type SnapshotPlan,
  type SnapshotReason,
  type StoredSnapshot,
} from '../snapshot/snapshotPlan.js';

export interface PreparedSnapshot {
  plan: SnapshotPlan;
  /** A new snapshot, to store with the start; null when resuming a stored one. */
  store: StoredSnapshot | null;
}

/** What this run copies before streaming, if anything (see decideSnapshot for the rules). */
export async function prepareSnapshot(
  checkpoint: CheckpointDoc | null,
  started: ConcreteStart,
  mongo: MongoClient,
  config: RelayConfig,
  logger: Logger,
  forced: SnapshotReason | null = null,
): Promise<PreparedSnapshot | null> {
  const d = config.derived;
  const decision = forced
    ? ({ kind: 'new', reason: forced, targets: d.targets } as const)
    : decideSnapshot(checkpoint, config.relay.snapshot, d.targets, (names) =>
        requestedTargets(names, d.targets, logger),
      );
  if (decision.kind === 'none') return null;
  if (decision.kind === 'resume') {
    logger.info(
      {
        snapshot: decision.plan.id,
        reason: decision.plan.reason,
        collection: decision.plan.collections[decision.plan.cursor.index]
          ? nsOf(decision.plan, decision.plan.cursor.index)
          : null,
        copied: decision.plan.cursor.copied,
      },
      'snapshot: resuming the interrupted copy after the last document checkpointed',
    );
    return { plan: decision.plan, store: null };
  }
  const clusterTime = startClusterTime(started, checkpoint);
  const collections = await collectionsToCopy(mongo, decision.targets, {
    checkpointDb: config.checkpoint.database,
    checkpointColl: config.checkpoint.collection,
  });
  const plan = newPlan(decision.reason, clusterTime, checkpoint?.snapshot?.number ?? 0, collections);
  logger.info(
    {
      snapshot: plan.id,
      reason: plan.reason,
      targets: decision.targets.map(formatTarget),
      collections: collections.map((c) => `${c.db}.${c.coll}`),
      estimatedDocuments: collections.reduce((n, c) => n + c.estimated, 0),
    },
    'snapshot: copying the existing documents first, then the changes since the stream position',
  );
  return { plan, store: { ...plan, state: 'running', startedAt: new Date() } };
}

/**
 * The cluster time every record of the snapshot carries: that of the stream position it starts at,
 * so consumers can order it against changes (the stream holds every change after it).
 */
function startClusterTime(started: ConcreteStart, checkpoint: CheckpointDoc | null): Timestamp {
  if ('startAtOperationTime' in started) return started.startAtOperationTime;
  const fromToken = clusterTimeOfToken(started.startAfter);
  if (fromToken) return fromToken;
  if (sameToken(started.startAfter, checkpoint?.token) && checkpoint?.clusterTime)
    return checkpoint.clusterTime;
  throw new Error(
    `the snapshot cannot tell the cluster time of its start position (token ${started.startAfter._data}); ` +
      'start it from a cluster time instead (RELAY_START_AT) or report this token format',
  );
}

/** The requested targets the configuration watches (the CLI refuses others; a stale request is trimmed). */
function requestedTargets(
  names: string[],
  configured: readonly WatchTarget[],
  logger: Logger,
): WatchTarget[] {
  if (names.length === 0) return [...configured];
  const requested = parseWatchTargets(names.join(','));
  const covered = requested.filter((t) => targetCovered(t, configured));
  const ignored = requested.filter((t) => !covered.includes(t));
  if (ignored.length > 0)
    logger.warn(
      { ignored: ignored.map(formatTarget), watch: configured.map(formatTarget) },
      'snapshot request: targets outside RELAY_WATCH are not copied',
    );
  return covered;
}

/** Is everything `t` names inside the configured targets? */
export function targetCovered(t: WatchTarget, configured: readonly WatchTarget[]): boolean {
  if (t.kind === 'deployment') return configured.some((c) => c.kind === 'deployment');
  if (t.kind === 'database')
    return configured.some((c) => c.kind === 'deployment' || (c.kind === 'database' && c.db === t.db));
  return targetsInclude(configured, { db: t.db, coll: t.coll });
}

const nsOf = (plan: Pick<SnapshotPlan, 'collections'>, index: number): string => {
  const c = plan.collections[index]!;
  return `${c.db}.${c.coll}`;
};

/** Metrics and log lines from each checkpoint write of the snapshot's cursor. */
export class SnapshotProgress {
  private copied: number;
  private index: number;
  private lastLoggedCopied: number;

  constructor(
    private readonly plan: SnapshotPlan,
    private readonly metrics: SnapshotMetrics,
    private readonly logger: Logger,
    private readonly logEvery: number,
  ) {
    this.copied = plan.cursor.copied;
    this.index = plan.cursor.index;
    this.lastLoggedCopied = this.copied;
    this.report(plan.cursor, 0);
  }

  written(cursor: SnapshotCursor): void {
    const copiedNow = Math.max(0, cursor.copied - this.copied);
    this.copied = Math.max(this.copied, cursor.copied);
    this.report(cursor, copiedNow);
    const total = this.plan.collections.length;
    if (cursor.done) {
      this.logger.info(
        { snapshot: this.plan.id, copied: this.copied, collections: total },
        'snapshot complete: every document copied and checkpointed; streaming the changes since its start',
      );
      return;
    }
    const collectionChanged = cursor.index !== this.index;
    const every = this.logEvery;
    const crossed =
      every > 0 && Math.floor(this.lastLoggedCopied / every) !== Math.floor(this.copied / every);
    this.index = cursor.index;
    if (!collectionChanged && !crossed) return;
    this.lastLoggedCopied = this.copied;
    this.logger.info(
      {
        snapshot: this.plan.id,
        collection: this.plan.collections[cursor.index] ? nsOf(this.plan, cursor.index) : null,
        collectionsDone: cursor.index,
        collections: total,
        copied: this.copied,
        estimatedRemaining: estimatedRemaining(this.plan, cursor),
      },
      'snapshot progress',
    );
  }

  private report(cursor: SnapshotCursor, copiedNow: number): void {
    const total = this.plan.collections.length;
    this.metrics.progress({
      copiedNow,
      collectionsDone: cursor.done ? total : cursor.index,
      collectionsTotal: total,
      remaining: estimatedRemaining(this.plan, cursor),
    });
  }
}
