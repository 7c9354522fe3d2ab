/**
 * The schema seen as a flat list of settings ("relay.watch" -> its entry), and reading a value by its
 * dotted key: what validation, messages and the generated reference iterate over.
 */
import { schema } from './schema.js';
import * as f from './formats.js';

export interface SchemaLeaf {
  env?: string;
  sensitive?: boolean;
  doc?: string;
  default?: unknown;
  format?: unknown;
}

/** key path ("relay.watch") -> its schema entry, for messages that name the environment variable too. */
export function schemaLeaves(node: object = schema, prefix = ''): Map<string, SchemaLeaf> {
  const out = new Map<string, SchemaLeaf>();
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && 'doc' in value) out.set(path, value as SchemaLeaf);
    else if (value && typeof value === 'object')
      for (const [k, v] of schemaLeaves(value, path)) out.set(k, v);
  }
  return out;
}

/** Is this setting a MongoDB connection string (shown redacted rather than hidden)? */
export function isConnectionString(leaf: SchemaLeaf): boolean {
  return leaf.format === f.mongoUri || leaf.format === f.optionalMongoUri;
}

/** The value at a dotted key of a nested object, or undefined. */
export function pathValue(node: unknown, key: string): unknown {
  let value: unknown = node;
  for (const part of key.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
