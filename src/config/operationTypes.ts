/**
 * MongoDB's change event operation types, checked against the driver's own type so that a new event
 * type in a driver upgrade fails the type check here rather than being refused at run time.
 * Source: https://www.mongodb.com/docs/manual/reference/change-events/
 */
import type { ChangeStreamDocument } from 'mongodb';

type OperationType = ChangeStreamDocument['operationType'];

/** Reported to every change stream. */
export const BASIC_OPERATION_TYPES = [
  'insert',
  'update',
  'replace',
  'delete',
  'drop',
  'rename',
  'dropDatabase',
  'invalidate',
] as const satisfies readonly OperationType[];

/**
 * Reported only to change streams opened with `showExpandedEvents: true` (MongoDB 6.0+; the sharding
 * events 6.1+), which the relay's change stream does not request.
 */
export const EXPANDED_OPERATION_TYPES = [
  'create',
  'createIndexes',
  'dropIndexes',
  'modify',
  'shardCollection',
  'reshardCollection',
  'refineCollectionShardKey',
] as const satisfies readonly OperationType[];

export const OPERATION_TYPES: readonly OperationType[] = [
  ...BASIC_OPERATION_TYPES,
  ...EXPANDED_OPERATION_TYPES,
];

// Compile-time completeness: every operation type the driver knows is in one of the lists above.
type Unlisted = Exclude<
  OperationType,
  (typeof BASIC_OPERATION_TYPES)[number] | (typeof EXPANDED_OPERATION_TYPES)[number]
>;
const everyTypeListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyTypeListed;

export function isExpandedOperationType(type: string): boolean {
  return (EXPANDED_OPERATION_TYPES as readonly string[]).includes(type);
}

export function splitOperationTypes(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
