/**
 * Loading the configuration: defaults < config file (--config, JSON or YAML) < environment.
 * Every problem is collected into one ConfigError naming each bad key (its environment variable and
 * its key), the value (secrets redacted, "not set" when absent) and what is allowed, cross-field
 * checks included, so an operator fixes them all in one go, before anything touches Kafka or the
 * checkpoint store. Warnings (misspelt variables, settings that have no effect) never stop a start.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import convict from 'convict';
import YAML from 'yaml';
import { schema } from './schema.js';
import * as f from './formats.js';
import { deriveSettings, type RawConfig, type RelayConfig } from './settings.js';
import { credentialsOf, redactSecrets, redactUri, registerSecret } from './redact.js';
import { closestName } from './closestName.js';
import { crossFieldProblems, crossFieldWarnings } from './crossChecks.js';
import { unknownVariables, type ConfigWarning } from './unknownVariables.js';

export type { ConfigWarning } from './unknownVariables.js';

export interface ConfigProblem {
  /** The environment variable, when the problem is about one setting. */
  variable: string | null;
  /** The key in a config file ("relay.watch"). */
  key: string | null;
  /** What is wrong and what is allowed. */
  message: string;
  /** The value as it may be shown: JSON-quoted, redacted for secrets, or "not set". */
  value: string | null;
  /** The whole line, as printed. */
  text: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  readonly warnings: readonly ConfigWarning[];
  constructor(problems: readonly ConfigProblem[], warnings: readonly ConfigWarning[] = []) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.text}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.warnings = warnings;
  }
}

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

export interface LoadOptions {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * What the configuration is for. `checkpoint`: commands that only read or change the checkpoint
   * (token show/set/clear, status) do not need Kafka, so KAFKA_BROKERS may be unset.
   */
  purpose?: 'daemon' | 'checkpoint';
}

export interface ConfigReport {
  config: RelayConfig;
  warnings: ConfigWarning[];
}

export function loadConfig(options: LoadOptions = {}): RelayConfig {
  return loadConfigReport(options).config;
}

export function loadConfigReport(options: LoadOptions = {}): ConfigReport {
  const env = options.env ?? process.env;
  const leaves = schemaLeaves();
  const fileObject = options.configFile ? readConfigFile(options.configFile) : {};
  const fileProblems = options.configFile ? unknownFileKeys(fileObject, options.configFile, leaves) : [];
  const known = new Set([...leaves.values()].flatMap((l) => (l.env ? [l.env] : [])));
  const warnings = unknownVariables(env, known);

  const conf = convict(validationSchema(), { env: env as Record<string, string> });
  conf.load(fileObject);
  const raw = conf.getProperties() as unknown as RawConfig;
  const rawText = (key: string): unknown => {
    const variable = leaves.get(key)?.env;
    return variable !== undefined && env[variable] !== undefined ? env[variable] : pathValue(fileObject, key);
  };
  for (const [key, leaf] of leaves) if (leaf.sensitive) registerSecrets(pathValue(raw, key), leaf);

  const { messages, general } = fieldMessages(conf, leaves, rawText);
  const kafkaUnused = options.purpose === 'checkpoint';
  const brokersUnset = [null, ''].includes(pathValue(raw, 'kafka.brokers') as string | null);
  if (kafkaUnused && brokersUnset) messages.delete('kafka.brokers');
  const invalid = new Set(messages.keys());
  for (const p of crossFieldProblems(raw, invalid, { kafkaUnused })) {
    if (!messages.has(p.key)) messages.set(p.key, p.message);
  }
  warnings.push(...crossFieldWarnings(raw, invalid));

  const problems = [
    ...fileProblems,
    ...general.map((message) => generalProblem(message)),
    ...[...leaves.keys()]
      .filter((key) => messages.has(key))
      .map((key) => describe(key, leaves.get(key)!, messages.get(key)!, rawText(key) ?? pathValue(raw, key))),
  ];
  if (problems.length > 0) throw new ConfigError(problems, warnings);
  if (kafkaUnused && brokersUnset) raw.kafka.brokers = '';
  return { config: deriveSettings(raw), warnings };
}

/** The schema with every leaf marked sensitive: convict then never puts a value in its messages. */
function validationSchema(): typeof schema {
  const mark = (node: object): object =>
    Object.fromEntries(
      Object.entries(node).map(([k, v]) => [
        k,
        v && typeof v === 'object' && 'doc' in v ? { ...v, sensitive: true } : mark(v as object),
      ]),
    );
  return mark(schema) as typeof schema;
}

/** key -> what is wrong with its value, from convict's formats and the strictness checks below. */
function fieldMessages(
  conf: { validate(options: convict.ValidateOptions): unknown },
  leaves: Map<string, SchemaLeaf>,
  rawText: (key: string) => unknown,
): { messages: Map<string, string>; general: string[] } {
  const messages = new Map<string, string>();
  const general: string[] = [];
  let output = '';
  try {
    conf.validate({ allowed: 'warn', output: () => undefined });
  } catch (error) {
    output = (error as Error).message;
  }
  // One problem per line (our formats' messages are one line each); a line naming no setting, such as
  // convict's "configuration param 'relay' missing from config", is kept as a problem of its own.
  for (const line of output.split('\n').filter((l) => l.trim() !== '')) {
    const key = [...leaves.keys()].find((k) => line.startsWith(`${k}: `));
    if (key) messages.set(key, line.slice(key.length + 2));
    else general.push(line.trim());
  }
  // convict reads numbers with parseFloat: "9464abc" would become 9464. Refuse what is not a number.
  for (const [key, leaf] of leaves) {
    const text = rawText(key);
    if (typeof leaf.default === 'number' && typeof text === 'string' && !/^\s*-?\d+(\.\d+)?\s*$/.test(text)) {
      messages.set(key, 'must be a number');
    }
  }
  return { messages, general };
}

function generalProblem(message: string): ConfigProblem {
  const text = redactSecrets(message);
  return { variable: null, key: null, message: text, value: null, text };
}

function describe(key: string, leaf: SchemaLeaf, message: string, value: unknown): ConfigProblem {
  const variable = leaf.env ?? null;
  const shown = showValue(value, leaf);
  const label = variable ? `${variable} (${key})` : key;
  const text = redactSecrets(
    `${label}: ${message}: ${shown === null ? 'value is not set' : `value was ${shown}`}`,
  );
  return { variable, key, message: redactSecrets(message), value: shown, text };
}

function showValue(value: unknown, leaf: SchemaLeaf): string | null {
  if (value === null || value === undefined) return null;
  if (leaf.sensitive) {
    if (value === '') return null;
    const isUri = leaf.format === f.mongoUri || leaf.format === f.optionalMongoUri;
    return isUri && typeof value === 'string' ? JSON.stringify(redactUri(value)) : '[redacted]';
  }
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 300 ? `${json.slice(0, 300)}…` : json;
}

function registerSecrets(value: unknown, leaf: SchemaLeaf): void {
  if (typeof value !== 'string' || value === '') return;
  const isUri = leaf.format === f.mongoUri || leaf.format === f.optionalMongoUri;
  for (const secret of isUri ? credentialsOf(value) : [value]) registerSecret(secret);
}

/** Keys of the config file that are not settings: refused, with the closest setting named. */
function unknownFileKeys(file: object, fileName: string, leaves: Map<string, SchemaLeaf>): ConfigProblem[] {
  const walk = (node: object, prefix: string): void => {
    for (const [k, v] of Object.entries(node)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (leaves.has(path)) continue;
      const isGroup = [...leaves.keys()].some((leaf) => leaf.startsWith(`${path}.`));
      if (isGroup && v && typeof v === 'object' && !Array.isArray(v)) walk(v, path);
      else if (isGroup) groups.push(path);
      else keys.push(path);
    }
  };
  const keys: string[] = [];
  const groups: string[] = [];
  walk(file, '');
  const groupProblems = groups.map((key) => {
    const message = `must be an object of settings (such as ${[...leaves.keys()].find((l) => l.startsWith(`${key}.`))})`;
    return {
      variable: null,
      key,
      message,
      value: null,
      text: `${key} (in --config ${fileName}): ${message}`,
    };
  });
  return [
    ...groupProblems,
    ...keys.map((key) => {
      const near = closestName(key, leaves.keys());
      const hint = near ? `; did you mean ${near} (${leaves.get(near)?.env ?? near})?` : '';
      const message = `is not a setting${hint}`;
      return {
        variable: null,
        key,
        message,
        value: null,
        text: `${key} (in --config ${fileName}): ${message}`,
      };
    }),
  ];
}

function pathValue(node: unknown, key: string): unknown {
  let value: unknown = node;
  for (const part of key.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function readConfigFile(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const parsed: unknown = ['.yaml', '.yml'].includes(extname(file).toLowerCase())
      ? YAML.parse(text)
      : JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('the top level must be an object');
    return parsed;
  } catch (e) {
    throw fileError(file, `is not valid ${extname(file) || 'JSON'} (${(e as Error).message})`);
  }
}

function fileError(file: string, message: string): ConfigError {
  return new ConfigError([
    { variable: null, key: null, message, value: null, text: redactSecrets(`--config ${file}: ${message}`) },
  ]);
}
