/**
 * Validation functions for convict formats. Each throws an Error whose message says what is allowed;
 * convict prefixes it with the key and appends the offending value.
 */
import { accessSync, constants } from 'node:fs';

export function requiredString(value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new Error('is required: set it to a non-empty string');
}

export function mongoUri(value: unknown): void {
  requiredString(value);
  if (!/^mongodb(\+srv)?:\/\/[^/?#]+/.test(value)) {
    throw new Error('must be a MongoDB connection string starting with mongodb:// or mongodb+srv://');
  }
}

export function optionalMongoUri(value: unknown): void {
  if (value === '' || value === null || value === undefined) return;
  mongoUri(value);
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
