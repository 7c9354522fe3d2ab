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

// MongoDB's naming rules (NamespaceString in the server; the Windows set of forbidden characters
// everywhere, so a configuration is portable): a database name is 1-63 bytes without these characters;
// a collection name is non-empty, does not start with ".", holds no "$" or NUL; "db.coll" is at most
// 255 bytes. '.' also separates db from collection in a target.
const BAD_DB_CHARS = /[/\\. "$*<>:|?\0]/;
const MAX_DB_BYTES = 63;
const MAX_NAMESPACE_BYTES = 255;
const SYSTEM_DBS = new Set(['admin', 'config', 'local']);

export class WatchTargetError extends Error {}

/** Why `db` is not a valid database name, or null when it is. */
export function databaseNameProblem(db: string): string | null {
  if (db === '') return 'a database name cannot be empty';
  if (BAD_DB_CHARS.test(db))
    return `"${db}" is not a valid database name (no / \\ . space " $ * < > : | ? or NUL)`;
  if (Buffer.byteLength(db) > MAX_DB_BYTES)
    return `"${db}" is not a valid database name (must be shorter than 64 bytes)`;
  return null;
}

/** Why `coll` is not a valid (watchable) collection name in `db`, or null when it is. */
export function collectionNameProblem(db: string, coll: string): string | null {
  if (coll === '' || coll.startsWith('.') || coll.includes('$') || coll.includes('\0')) {
    return `collection name "${coll}" is not a valid collection name (not empty, no leading ".", no "$" or NUL)`;
  }
  if (coll.startsWith('system.')) return `"${coll}" is a system collection, not a watchable collection`;
  if (Buffer.byteLength(`${db}.${coll}`) > MAX_NAMESPACE_BYTES) {
    return `"${db}.${coll}" is longer than MongoDB's namespace limit of 255 bytes`;
  }
  return null;
}

/** Every bad target is named in one error, so an operator fixes them all at once. */
export function parseWatchTargets(spec: string): WatchTarget[] {
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new WatchTargetError('must name at least one target: db.coll, db.* or *');
  const targets: WatchTarget[] = [];
  const problems: string[] = [];
  for (const part of parts) {
    try {
      targets.push(parseOne(part));
    } catch (error) {
      if (!(error instanceof WatchTargetError)) throw error;
      problems.push(error.message);
    }
  }
  if (targets.some((t) => t.kind === 'deployment') && parts.length > 1) {
    problems.push('"*" watches the whole deployment and cannot be combined with other targets');
  }
  if (problems.length > 0) throw new WatchTargetError(problems.join('; '));
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
  const dbProblem = databaseNameProblem(db);
  if (dbProblem) throw new WatchTargetError(`target "${part}": ${dbProblem}`);
  if (SYSTEM_DBS.has(db))
    throw new WatchTargetError(`target "${part}": the system database "${db}" cannot be watched`);
  if (coll === '*') return { kind: 'database', db };
  const collProblem = collectionNameProblem(db, coll);
  if (collProblem) throw new WatchTargetError(`target "${part}": ${collProblem}`);
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
