/** Loading the configuration from a given environment, as the CLI does, for the config unit tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import type { RelayConfig } from '../../../src/config/settings.js';

export const BASE_ENV: Readonly<Record<string, string>> = {
  MONGODB_URI: 'mongodb://db.example:27017/?replicaSet=rs0',
  RELAY_WATCH: 'shop.orders',
  KAFKA_BROKERS: 'kafka.example:9092',
};

export function configFrom(env: Record<string, string | undefined> = {}, configFile?: string): RelayConfig {
  return loadConfig({ env: withBase(env), configFile });
}

/** The ConfigError loading `env` throws (fails the test when loading succeeds). */
export function configErrorFrom(env: Record<string, string | undefined>, configFile?: string): ConfigError {
  try {
    loadConfig({ env: withBase(env), configFile });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a configuration error for ${JSON.stringify(env)}`);
}

function withBase(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...BASE_ENV };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

/** Writes `text` to a temporary file named `name` and returns its path. */
export function tempFile(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'relay-config-unit-')), name);
  writeFileSync(file, text);
  return file;
}
