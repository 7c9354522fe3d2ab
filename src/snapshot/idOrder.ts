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
 * The deprecated types (Symbol, DBPointer, JavaScript code) come last, in one scan of "every other
 * type" (`$not: {$type: [the classes above]}`) sorted by `_id`; resuming inside it rescans it from its
 * start (a few documents copied again — same change IDs — rather than a `$gt` that would skip the
 * other deprecated types). Naming the types only by their common aliases keeps the queries to what
 * every server version (and the test stand-in) understands.
 *
 * Invariant: for a collection whose documents do not change, the concatenation of every class's scan
 * holds every document exactly once (in `_id` order within each class), and the scans after a cursor
 * (the last `_id` handed out) hold every document after it in that order — plus, for the last class
 * only, the ones before it in that class.
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

/** Where a walk stands: nothing read yet, or the last `_id` handed out. */
export type IdCursor = { started: false } | { started: true; lastId: unknown };

/**
 * The next range to scan after `cursor`, or null when the collection is exhausted. `classIndex` is
 * the class the filter scans; after it is exhausted, call again with `exhaustedClass` set to it.
 */
export function nextRange(
  cursor: IdCursor,
  exhaustedClass: number | null,
): { classIndex: number; filter: Document } | null {
  let classIndex: number;
  let after: { lastId: unknown } | null = null;
  if (exhaustedClass !== null) classIndex = exhaustedClass + 1;
  else if (!cursor.started) classIndex = 0;
  else {
    classIndex = typeClassOf(cursor.lastId);
    const aliases = ID_TYPE_CLASSES[classIndex];
    if (aliases && SINGLE_VALUED.has(aliases[0]!)) classIndex += 1;
    else if (aliases) after = { lastId: cursor.lastId };
  }
  if (classIndex > OTHER_TYPES_CLASS) return null;
  if (classIndex === OTHER_TYPES_CLASS)
    return { classIndex, filter: { _id: { $not: { $type: NAMED_TYPES } } } };
  const types = [...ID_TYPE_CLASSES[classIndex]!];
  const filter: Document = after ? { _id: { $type: types, $gt: after.lastId } } : { _id: { $type: types } };
  return { classIndex, filter };
}

/** The `_id` as canonical Extended JSON: the exact, type-preserving form the checkpoint keeps. */
export const encodeId = (id: unknown): string => BSON.EJSON.stringify({ _id: id }, { relaxed: false });

export function decodeId(json: string): unknown {
  return (BSON.EJSON.parse(json, { relaxed: false }) as { _id: unknown })._id;
}
