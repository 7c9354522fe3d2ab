/**
 * Walking a collection by `_id` in MongoDB's BSON comparison order, resumably, whatever the mix of
 * `_id` types.
 *
 * Why not one `{_id: {$gt: last}}` query: MongoDB's comparison operators are type-bracketed — `$gt`
 * matches only values of the operand's own type class ("Comparison/Sort Order" and "Query Operators:
 * Comparison" in the MongoDB manual), so resuming after a string `_id` that way silently skips every
 * ObjectId, Boolean, Date… that sorts after the strings. The walk therefore goes class by class, in
 * the documented order (MinKey, Null, Numbers, String, Object, BinData, ObjectId, Boolean, Date,
 * Timestamp, MaxKey; arrays, regular expressions and undefined cannot be `_id`s), each class one
 * `{_id: {$type: [...]}}` range scan of the `_id` index sorted by `_id`, resuming inside a class with
 * `$gt` (which the class bracket makes exact).
 *
 * The deprecated types (Symbol, DBPointer, JavaScript code with and without scope) come last, in one
 * scan of "every other type" (`$not: {$type: [the classes above]}`) sorted by `_id`. Naming the types
 * only by their common aliases keeps the queries to what every server version (and the test
 * stand-in) understands. `$gt` cannot resume inside that scan (it would match only the last `_id`'s
 * own bracket and skip the later deprecated types), so it resumes from an index bound instead:
 * `min: {_id: last}` with the `_id` index hinted is inclusive and not type-bracketed, and the one
 * document equal to the last `_id` is skipped. Two of those types do not come back from the driver as
 * what they were: a Symbol is promoted to a string (strings and symbols share one bracket in the
 * index order, so the bound is still exact) and a DBPointer decodes as a DBRef, an embedded document
 * that sorts before every DBPointer (so that bound rescans the DBPointers: a few documents copied
 * again, with the same change IDs, never one skipped). That is also why the cursor records the class
 * it was scanning instead of deriving it from the decoded `_id`: a promoted Symbol would otherwise
 * resume in the string class and copy every class after it again.
 *
 * Invariant: for a collection whose documents do not change, the concatenation of every class's scan
 * holds every document exactly once (in `_id` order within each class), and the scans after a cursor
 * (the last `_id` handed out and its class) hold every document after it in that order — plus, after
 * a DBPointer only, the DBPointers before it.
 */
import { BSON, type Document } from 'mongodb';

/** `$type` aliases of each class, in BSON comparison order. */
export const ID_TYPE_CLASSES: readonly (readonly string[])[] = [
  ['minKey'],
  ['null'],
  ['double', 'int', 'long', 'decimal'],
  ['string'],
  ['object'],
  ['binData'],
  ['objectId'],
  ['bool'],
  ['date'],
  ['timestamp'],
  ['maxKey'],
];

/** The last class: every type not named above (scanned with `$not`, see the header). */
export const OTHER_TYPES_CLASS = ID_TYPE_CLASSES.length;
const NAMED_TYPES = ID_TYPE_CLASSES.flat();

/** Classes that hold at most one value (so at most one document per collection): nothing follows it. */
const SINGLE_VALUED = new Set(['minKey', 'null', 'maxKey']);

/** The class index of an `_id` value as the driver decoded it (promoted JavaScript values included). */
export function typeClassOf(id: unknown): number {
  const index = ID_TYPE_CLASSES.findIndex((aliases) => aliases.includes(typeAlias(id)));
  return index < 0 ? OTHER_TYPES_CLASS : index;
}

function typeAlias(id: unknown): string {
  if (id === undefined) return 'undefined';
  if (id === null) return 'null';
  if (typeof id === 'number' || typeof id === 'bigint') return 'double';
  if (typeof id === 'string') return 'string';
  if (typeof id === 'boolean') return 'bool';
  if (id instanceof Date) return 'date';
  if (id instanceof RegExp) return 'regex';
  const bsontype = (id as { _bsontype?: string } | null)?._bsontype;
  switch (bsontype) {
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'Double':
    case 'Int32':
    case 'Long':
    case 'Decimal128':
      return 'double';
    case 'BSONSymbol':
      return 'symbol';
    case 'Binary':
      return 'binData';
    case 'ObjectId':
      return 'objectId';
    case 'Timestamp':
      return 'timestamp';
    case 'BSONRegExp':
      return 'regex';
    case 'DBRef':
      // A DBRef is an embedded document with $ref/$id: it sorts as an object.
      return 'object';
    case 'Code':
      return (id as BSON.Code).scope ? 'javascriptWithScope' : 'javascript';
    default:
      return 'object';
  }
}

/** The name a cursor records for a class (its first alias; "other" for the deprecated types). */
export function className(classIndex: number): string {
  return ID_TYPE_CLASSES[classIndex]?.[0] ?? 'other';
}

/** The class a recorded name stands for, or undefined for a name this version does not know. */
export function classIndexOf(name: string | undefined): number | undefined {
  if (name === 'other') return OTHER_TYPES_CLASS;
  const index = ID_TYPE_CLASSES.findIndex((aliases) => aliases[0] === name);
  return index < 0 ? undefined : index;
}

/**
 * Where a walk stands: nothing read yet, or the last `_id` handed out and the class that was scanning
 * it (absent in cursors written before it was recorded: derived from the `_id` then).
 */
export type IdCursor = { started: false } | { started: true; lastId: unknown; classIndex?: number };

/** One range scan: the class, its filter, and for a resumed deprecated-types scan its index bound. */
export interface IdRange {
  classIndex: number;
  filter: Document;
  /** `min` for the `_id` index (inclusive); the document whose `_id` encodes as `skipIdJson` is skipped. */
  min?: Document;
  skipIdJson?: string;
}

/**
 * The next range to scan after `cursor`, or null when the collection is exhausted. `classIndex` is
 * the class the filter scans; after it is exhausted, call again with `exhaustedClass` set to it.
 */
export function nextRange(cursor: IdCursor, exhaustedClass: number | null): IdRange | null {
  let classIndex: number;
  let after: { lastId: unknown } | null = null;
  if (exhaustedClass !== null) classIndex = exhaustedClass + 1;
  else if (!cursor.started) classIndex = 0;
  else {
    classIndex = cursor.classIndex ?? typeClassOf(cursor.lastId);
    const aliases = ID_TYPE_CLASSES[classIndex];
    if (aliases && SINGLE_VALUED.has(aliases[0]!)) classIndex += 1;
    else after = { lastId: cursor.lastId };
  }
  if (classIndex > OTHER_TYPES_CLASS) return null;
  if (classIndex === OTHER_TYPES_CLASS) {
    const filter = { _id: { $not: { $type: NAMED_TYPES } } };
    if (!after) return { classIndex, filter };
    return { classIndex, filter, min: { _id: after.lastId }, skipIdJson: encodeId(after.lastId) };
  }
  const types = [...ID_TYPE_CLASSES[classIndex]!];
  const filter: Document = after ? { _id: { $type: types, $gt: after.lastId } } : { _id: { $type: types } };
  return { classIndex, filter };
}

/** The `_id` as canonical Extended JSON: the exact, type-preserving form the checkpoint keeps. */
export const encodeId = (id: unknown): string => BSON.EJSON.stringify({ _id: id }, { relaxed: false });

export function decodeId(json: string): unknown {
  return (BSON.EJSON.parse(json, { relaxed: false }) as { _id: unknown })._id;
}
