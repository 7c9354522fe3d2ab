/**
 * RELAY_PIPELINE: a JSON array of aggregation stages, read as Extended JSON so that dates and
 * ObjectIds can be matched. Refused here, before anything connects:
 * - stages MongoDB does not allow in a change stream (only the allow-list below is);
 * - stages that remove or change `_id`: it is the resume token, and MongoDB fails the stream when a
 *   pipeline modifies it, so the relay could neither publish nor resume;
 * - stages that remove or change `operationType`, `ns`, `documentKey` or `clusterTime`: the relay
 *   filters, routes, partitions and labels records by them (the record contract in the README).
 * Each problem names its stage by index, and every stage is checked before reporting.
 */
import { BSON, type Document } from 'mongodb';

/** The stages MongoDB accepts in a change stream pipeline (besides its own $changeStream). */
const ALLOWED_STAGES = [
  '$match',
  '$project',
  '$addFields',
  '$set',
  '$unset',
  '$replaceRoot',
  '$replaceWith',
  '$redact',
] as const;

/** Fields of the change event the relay depends on; `_id` first, as the one resuming needs. */
const PROTECTED_FIELDS = ['_id', 'operationType', 'ns', 'documentKey', 'clusterTime'] as const;

export function parsePipeline(value: unknown): Document[] {
  let stages: unknown = value;
  if (typeof value === 'string') {
    try {
      stages = BSON.EJSON.parse(value === '' ? '[]' : value, { relaxed: false });
    } catch (e) {
      throw new Error(`must be a JSON array of aggregation stages (${(e as Error).message})`);
    }
  }
  if (!Array.isArray(stages)) throw new Error('must be a JSON array of aggregation stages');
  const problems = stages.flatMap((stage: unknown, i) => stageProblems(stage).map((p) => `stage ${i}: ${p}`));
  if (problems.length > 0) throw new Error(problems.join('; '));
  return stages as Document[];
}

function stageProblems(stage: unknown): string[] {
  if (typeof stage !== 'object' || stage === null || Array.isArray(stage)) {
    return ['must be an object like {"$match": {...}}'];
  }
  const keys = Object.keys(stage);
  const name = keys[0];
  if (keys.length !== 1 || name === undefined || !name.startsWith('$')) {
    return ['must have exactly one key naming the stage, like "$match"'];
  }
  if (!(ALLOWED_STAGES as readonly string[]).includes(name)) {
    return [`${name} is not allowed in a change stream pipeline (allowed: ${ALLOWED_STAGES.join(', ')})`];
  }
  const spec: unknown = (stage as Record<string, unknown>)[name];
  const touched = touchedFields(name, spec);
  return touched.map((field) => `${name} ${field.how} ${field.name}: ${consequence(field.name)}`);
}

interface Touch {
  name: (typeof PROTECTED_FIELDS)[number];
  how: string;
}

function touchedFields(stage: string, spec: unknown): Touch[] {
  switch (stage) {
    case '$project':
      return projectTouches(spec);
    case '$addFields':
    case '$set':
      return isPlainObject(spec) ? pathTouches(Object.keys(spec), 'changes') : [];
    case '$unset':
      return pathTouches(
        typeof spec === 'string' ? [spec] : Array.isArray(spec) ? spec.map(String) : [],
        'removes',
      );
    case '$replaceRoot':
      return rootTouches(isPlainObject(spec) ? spec.newRoot : undefined);
    case '$replaceWith':
      return rootTouches(spec);
    default:
      // $match only filters; $redact cannot be analysed statically and is the operator's responsibility.
      return [];
  }
}

/** Which protected fields a list of dotted paths reaches ("_id" and "_id._data" both touch `_id`). */
function pathTouches(paths: readonly string[], how: string): Touch[] {
  return PROTECTED_FIELDS.filter((f) => paths.some((p) => p === f || p.startsWith(`${f}.`))).map((name) => ({
    name,
    how,
  }));
}

function projectTouches(spec: unknown): Touch[] {
  if (!isPlainObject(spec)) return [];
  const isExclusion = (v: unknown): boolean => scalar(v) === 0 || v === false;
  const isInclusion = (v: unknown): boolean => scalar(v) === 1 || v === true;
  const touches: Touch[] = [];
  for (const name of PROTECTED_FIELDS) {
    for (const [path, v] of Object.entries(spec)) {
      if (path !== name && !path.startsWith(`${name}.`)) continue;
      if (path === name && isInclusion(v)) continue;
      touches.push({ name, how: isExclusion(v) ? 'removes' : 'changes' });
    }
  }
  // An inclusion projection keeps only what it names (and _id): the other protected fields must be listed.
  const including = Object.entries(spec).some(([path, v]) => path !== '_id' && !isExclusion(v));
  if (including) {
    for (const name of PROTECTED_FIELDS) {
      if (name !== '_id' && !(name in spec) && !touches.some((t) => t.name === name)) {
        touches.push({ name, how: 'keeps only the fields it names, so it removes' });
      }
    }
  }
  return touches;
}

/**
 * A new root keeps a protected field only if it provably carries it over: "$$ROOT" (or "$$CURRENT"),
 * a literal `{field: "$field"}`, or a $mergeObjects whose later parts do not override it.
 */
function rootTouches(root: unknown): Touch[] {
  const kept = new Set<string>();
  const apply = (part: unknown): void => {
    if (part === '$$ROOT' || part === '$$CURRENT') {
      PROTECTED_FIELDS.forEach((f) => kept.add(f));
    } else if (isPlainObject(part) && !Object.keys(part).some((k) => k.startsWith('$'))) {
      for (const f of PROTECTED_FIELDS) {
        if (f in part) {
          if (part[f] === `$${f}`) kept.add(f);
          else kept.delete(f);
        }
      }
    } else {
      // Any other expression ("$fullDocument", a $cond...) may set any field: nothing is known kept.
      kept.clear();
    }
  };
  if (isPlainObject(root) && Array.isArray(root.$mergeObjects) && Object.keys(root).length === 1) {
    root.$mergeObjects.forEach(apply);
  } else if (isPlainObject(root) && !Object.keys(root).some((k) => k.startsWith('$'))) {
    apply(root); // a literal new root holds nothing but what it names
  } else {
    apply(root);
  }
  return PROTECTED_FIELDS.filter((f) => !kept.has(f)).map((name) => ({
    name,
    how: 'replaces the event without carrying over',
  }));
}

function consequence(field: (typeof PROTECTED_FIELDS)[number]): string {
  return field === '_id'
    ? `_id is the resume token; MongoDB fails a change stream whose pipeline modifies it, and the relay could not resume (keep _id: "$_id")`
    : `the relay needs ${field} to filter, route, partition and label records (keep ${field}: "$${field}")`;
}

/** Extended JSON numbers arrive as BSON wrappers (Int32, Double, Long): their numeric value. */
function scalar(v: unknown): unknown {
  if (v instanceof BSON.Int32 || v instanceof BSON.Double) return v.value;
  if (v instanceof BSON.Long) return v.toNumber();
  if (v instanceof BSON.Decimal128) return Number(v.toString());
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
