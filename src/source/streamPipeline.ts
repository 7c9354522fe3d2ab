/**
 * The aggregation pipeline the relay's single change stream runs: the namespace selection for several
 * targets, the exclusion of the relay's own bookkeeping, then the operator's RELAY_PIPELINE.
 */
import type { Document } from 'mongodb';
import type { StreamScope, WatchTarget } from '../config/watchTargets.js';

export interface OwnNamespaces {
  /** The checkpoint store's database and collection, when it lives on the watched deployment. */
  checkpointDb: string;
  checkpointColl: string;
}

export function buildStreamPipeline(
  scope: StreamScope,
  targets: readonly WatchTarget[],
  own: OwnNamespaces | null,
  userStages: readonly Document[],
): Document[] {
  const stages: Document[] = [];
  if (targets.length > 1) {
    const branches: Document[] = targets.map((t) =>
      t.kind === 'collection'
        ? { 'ns.db': t.db, 'ns.coll': t.coll }
        : t.kind === 'database'
          ? { 'ns.db': t.db }
          : {},
    );
    // An invalidate event carries no ns; it must never be filtered away or the stream would end unseen.
    branches.push({ operationType: 'invalidate' });
    stages.push({ $match: { $or: branches } });
  }
  if (own && coversNamespace(scope, own.checkpointDb)) {
    // Never relay our own writes: under "*" not even the relay's database (consumer "seen" marks live
    // there too, and relaying them would feed consumers their own bookkeeping).
    const excluded =
      scope.level === 'deployment'
        ? { 'ns.db': own.checkpointDb }
        : { 'ns.db': own.checkpointDb, 'ns.coll': own.checkpointColl };
    stages.push({ $match: { $nor: [excluded] } });
  }
  stages.push(...userStages);
  return stages;
}

function coversNamespace(scope: StreamScope, db: string): boolean {
  return scope.level === 'deployment' || scope.db === db;
}
