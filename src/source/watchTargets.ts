/**
 * What the relay watches (`RELAY_WATCH`), and the single change stream that covers it.
 *
 * Several targets are served by ONE change stream at the narrowest scope that covers them all, with a
 * `$match` on the namespace: one stream means one resume token, so one checkpoint orders every change
 * (this is also how Debezium's MongoDB connector filters collections).
 */
export type WatchTarget =
  | { kind: 'collection'; db: string; coll: string }
  | { kind: 'database'; db: string }
  | { kind: 'deployment' };

export type StreamScope =
  | { level: 'collection'; db: string; coll: string }
  | { level: 'database'; db: string }
  | { level: 'deployment' };

// MongoDB forbids these in database names; '.' separates db from collection in a target.
const BAD_DB_CHARS = /[/\\. "$*<>:|?\0]/;
const SYSTEM_DBS = new Set(['admin', 'config', 'local']);

export class WatchTargetError extends Error {}

export function parseWatchTargets(spec: string): WatchTarget[] {
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new WatchTargetError('must name at least one target: db.coll, db.* or *');
  const targets = parts.map(parseOne);
  if (targets.some((t) => t.kind === 'deployment') && targets.length > 1) {
    throw new WatchTargetError('"*" watches the whole deployment and cannot be combined with other targets');
  }
  return dedupe(targets);
}

function parseOne(part: string): WatchTarget {
  if (part === '*') return { kind: 'deployment' };
  const dot = part.indexOf('.');
  if (dot <= 0 || dot === part.length - 1) {
    throw new WatchTargetError(`target "${part}" must be db.coll, db.* or *`);
  }
  const db = part.slice(0, dot);
  const coll = part.slice(dot + 1);
  if (BAD_DB_CHARS.test(db))
    throw new WatchTargetError(`target "${part}": "${db}" is not a valid database name`);
  if (SYSTEM_DBS.has(db))
    throw new WatchTargetError(`target "${part}": the system database "${db}" cannot be watched`);
  if (coll === '*') return { kind: 'database', db };
  if (coll.includes('$') || coll.includes('\0') || coll.startsWith('system.')) {
    throw new WatchTargetError(`target "${part}": "${coll}" is not a watchable collection name`);
  }
  return { kind: 'collection', db, coll };
}

function dedupe(targets: WatchTarget[]): WatchTarget[] {
  const seen = new Map<string, WatchTarget>();
  for (const t of targets) seen.set(formatTarget(t), t);
  // A database target covers its collections: drop those to keep the $match minimal.
  const wholeDbs = new Set(targets.filter((t) => t.kind === 'database').map((t) => t.db));
  return [...seen.values()].filter((t) => !(t.kind === 'collection' && wholeDbs.has(t.db)));
}

export function formatTarget(t: WatchTarget): string {
  if (t.kind === 'deployment') return '*';
  return t.kind === 'database' ? `${t.db}.*` : `${t.db}.${t.coll}`;
}

/** The narrowest change stream scope covering every target. */
export function streamScope(targets: readonly WatchTarget[]): StreamScope {
  const first = targets[0];
  if (!first) throw new WatchTargetError('no watch targets');
  if (targets.length === 1) {
    if (first.kind === 'collection') return { level: 'collection', db: first.db, coll: first.coll };
    if (first.kind === 'database') return { level: 'database', db: first.db };
    return { level: 'deployment' };
  }
  const dbs = new Set(targets.map((t) => (t.kind === 'deployment' ? '*' : t.db)));
  const onlyDb = [...dbs][0];
  if (dbs.size === 1 && onlyDb !== undefined && onlyDb !== '*') return { level: 'database', db: onlyDb };
  return { level: 'deployment' };
}

/** Does `ns` fall inside one of the targets? (Used to build the `$match` and to test it.) */
export function targetsInclude(targets: readonly WatchTarget[], ns: { db: string; coll?: string }): boolean {
  return targets.some(
    (t) =>
      t.kind === 'deployment' ||
      (t.kind === 'database' && t.db === ns.db) ||
      (t.kind === 'collection' && t.db === ns.db && t.coll === ns.coll),
  );
}
