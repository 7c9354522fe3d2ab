/**
 * Validation functions for convict formats. Each throws an Error whose message says what is allowed
 * (one line); the loader prefixes it with the variable and key and appends the offending value.
 */
import { accessSync, constants } from 'node:fs';
import convict from 'convict';
import { validateConnectionString } from './connectionString.js';
import { closestName } from './closestName.js';
import { OPERATION_TYPES, isExpandedOperationType, splitOperationTypes } from './operationTypes.js';
import { parseStartAt } from './startAt.js';
import { collectionNameProblem, databaseNameProblem } from './watchTargets.js';

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

/**
 * The format of every boolean setting: true/false, 1/0 or yes/no (any case), meaning what they say.
 * Anything else is refused. (convict's own Boolean reads every string but "false" as true, so
 * KAFKA_SSL=no meant TLS on.) Use it as `format: f.strictBoolean`.
 */
export const strictBoolean = 'strict-boolean';
convict.addFormat({
  name: strictBoolean,
  validate: (value: unknown) => {
    if (typeof value !== 'boolean') throw new Error('must be true or false (also accepted: 1/0, yes/no)');
  },
  // Unknown words stay strings, so that validate refuses them with the value the operator wrote.
  coerce: (value: string) => {
    const word = value.trim().toLowerCase();
    return TRUE_WORDS.includes(word) ? true : FALSE_WORDS.includes(word) ? false : value;
  },
});

export function requiredString(value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new Error('is required: set it to a non-empty string');
}

/** A MongoDB connection string the driver's own parser accepts. */
export function mongoUri(value: unknown): void {
  requiredString(value);
  validateConnectionString(value);
}

export function optionalMongoUri(value: unknown): void {
  if (value === '' || value === null || value === undefined) return;
  mongoUri(value);
}

export function databaseName(value: unknown): void {
  requiredString(value);
  const problem = databaseNameProblem(value);
  if (problem) throw new Error(`must be a valid MongoDB database name: ${problem}`);
}

export function collectionName(value: unknown): void {
  requiredString(value);
  const problem = collectionNameProblem('db', value);
  if (problem) throw new Error(`must be a valid MongoDB collection name: ${problem}`);
}

/** Comma-separated change event operation types, as MongoDB spells them (case-sensitive). */
export function operationTypeList(value: unknown): void {
  if (typeof value !== 'string') throw new Error('must be a comma-separated list of operation types');
  const types = splitOperationTypes(value);
  const unknown = types.filter((t) => !(OPERATION_TYPES as readonly string[]).includes(t));
  if (unknown.length > 0) {
    const named = unknown.map((t) => {
      const near = closestName(t, OPERATION_TYPES);
      return near ? `${JSON.stringify(t)} (did you mean ${JSON.stringify(near)}?)` : JSON.stringify(t);
    });
    throw new Error(
      `must list MongoDB change event operation types (unknown: ${named.join(', ')}; known: ${OPERATION_TYPES.join(', ')})`,
    );
  }
  if (types.length > 0 && types.every(isExpandedOperationType)) {
    throw new Error(
      'lists only expanded-event types, which MongoDB reports only to change streams opened with ' +
        'showExpandedEvents, which the relay does not request: it would publish nothing. Add the ' +
        'types you want published (insert, update, replace, delete, ...) or leave it empty for all',
    );
  }
}

export function startAt(value: unknown): void {
  if (typeof value !== 'string') throw new Error('must be a string');
  parseStartAt(value);
}

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

export function brokerList(value: unknown): void {
  requiredString(value);
  const brokers = value.split(',').map((b) => b.trim());
  const bad = brokers.filter((b) => !HOST_PORT.test(b) || Number(b.slice(b.lastIndexOf(':') + 1)) > 65535);
  if (bad.length > 0) {
    throw new Error(
      `must be a comma-separated list of host:port (bad entries: ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
    );
  }
}

/** Kafka topic names: 1-249 chars of [a-zA-Z0-9._-]; the template may hold {db} and {coll}. */
export function topicTemplate(value: unknown): void {
  requiredString(value);
  const unknownPlaceholder = value.match(/\{(?!db\}|coll\})[^}]*\}/);
  if (unknownPlaceholder)
    throw new Error(`may only use the placeholders {db} and {coll} (found ${unknownPlaceholder[0]})`);
  const literal = value.replace(/\{db\}|\{coll\}/g, 'x');
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(literal)) {
    throw new Error(
      'must give a valid Kafka topic name: letters, digits, ".", "_" and "-" besides {db} and {coll}',
    );
  }
}

export function topicName(value: unknown): void {
  requiredString(value);
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(value))
    throw new Error('must be a Kafka topic name: 1-249 of [A-Za-z0-9._-]');
}

export function positiveInt(value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1) throw new Error('must be an integer of at least 1');
}

export function nonNegativeInt(value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 0) throw new Error('must be an integer of at least 0');
}

export function port(value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) {
    throw new Error('must be a TCP port number from 0 to 65535');
  }
}

export function replicationFactor(value: unknown): void {
  if (!Number.isInteger(value) || ((value as number) < 1 && value !== -1)) {
    throw new Error('must be a positive integer, or -1 for the broker default');
  }
}

export function oneOf(allowed: readonly string[]): (value: unknown) => void {
  return (value) => {
    if (typeof value !== 'string' || !allowed.includes(value))
      throw new Error(`must be one of: ${allowed.join(', ')}`);
  };
}

export function stringList(value: unknown): void {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new Error('must be a list of strings');
}

/** Empty, or the path of a file this process can read (certificates and keys mounted from Secrets). */
export function optionalReadableFile(value: unknown): void {
  if (value === '' || value === null || value === undefined) return;
  if (typeof value !== 'string') throw new Error('must be a file path');
  try {
    accessSync(value, constants.R_OK);
  } catch (error) {
    throw new Error(`must be a readable file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}
