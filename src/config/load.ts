/**
 * Loading the configuration: defaults < config file (--config, JSON or YAML) < environment.
 * Every problem is collected into one ConfigError naming each bad key, its value and what is allowed,
 * so an operator fixes them all in one go, before anything touches Kafka or the checkpoint store.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import convict from 'convict';
import YAML from 'yaml';
import { schema } from './schema.js';
import { deriveSettings, type RelayConfig } from './settings.js';
import { redactSecrets } from './redact.js';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

interface SchemaLeaf {
  env?: string;
  sensitive?: boolean;
}

/** key path ("relay.watch") -> its schema entry, for messages that name the environment variable too. */
export function schemaLeaves(
  node: object = schema,
  prefix = '',
): Map<string, SchemaLeaf & { doc?: string; default?: unknown }> {
  const out = new Map<string, SchemaLeaf & { doc?: string; default?: unknown }>();
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && 'doc' in value) out.set(path, value as SchemaLeaf);
    else if (value && typeof value === 'object')
      for (const [k, v] of schemaLeaves(value, path)) out.set(k, v);
  }
  return out;
}

export interface LoadOptions {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(options: LoadOptions = {}): RelayConfig {
  const env = options.env ?? process.env;
  const conf = convict(schema, { env: env as Record<string, string> });
  if (options.configFile) conf.load(readConfigFile(options.configFile));
  const problems: string[] = [];
  try {
    conf.validate({ allowed: 'strict', output: (m) => problems.push(m) });
  } catch (e) {
    problems.push(...(e as Error).message.split('\n').filter((l) => l.trim() !== ''));
  }
  if (problems.length > 0) throw new ConfigError(problems.map(describeProblem));
  const raw = conf.getProperties();
  try {
    return deriveSettings(raw as unknown as Parameters<typeof deriveSettings>[0]);
  } catch (e) {
    throw new ConfigError([(e as Error).message]);
  }
}

function readConfigFile(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([
      `--config ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    ]);
  }
  try {
    const parsed: unknown = ['.yaml', '.yml'].includes(extname(file).toLowerCase())
      ? YAML.parse(text)
      : JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('the top level must be an object');
    return parsed;
  } catch (e) {
    throw new ConfigError([
      `--config ${file}: is not valid ${extname(file) || 'JSON'} (${(e as Error).message})`,
    ]);
  }
}

/**
 * convict says `relay.watch: must be ...: value was "x"`; we add the environment variable and make
 * sure no secret value is ever echoed back.
 */
function describeProblem(message: string): string {
  const leaves = schemaLeaves();
  const match = /^([A-Za-z0-9_.]+): (.*)$/s.exec(message.trim());
  if (!match || !match[1] || !leaves.has(match[1])) return redactSecrets(message.trim());
  const key = match[1];
  const leaf = leaves.get(key);
  let rest = match[2] ?? '';
  // convict omits sensitive values; say so rather than leave the reader wondering.
  if (leaf?.sensitive) rest = `${rest.replace(/: value was .*$/s, '')}: value was [redacted]`;
  rest = rest.replace(/: value was null$/, ': value is not set');
  return redactSecrets(`${leaf?.env ?? key} (${key}): ${rest}`);
}
