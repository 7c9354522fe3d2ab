/**
 * Loading the configuration: defaults < config file (--config, JSON or YAML) < environment.
 * Every problem is collected into one ConfigError naming each bad key (its environment variable and
 * its key), the value (secrets redacted, "not set" when absent) and what is allowed, cross-field
 * checks included, so an operator fixes them all in one go, before anything touches Kafka or the
 * checkpoint store. Warnings (misspelt variables, settings that have no effect) never stop a start.
 */
import convict from 'convict';
import { schema } from './schema.js';
import { deriveSettings, type RawConfig, type RelayConfig } from './settings.js';
import { credentialsOf, registerSecret } from './redact.js';
import { crossFieldProblems, crossFieldWarnings } from './crossChecks.js';
import { unknownVariables, type ConfigWarning } from './unknownVariables.js';
import { isConnectionString, pathValue, schemaLeaves, type SchemaLeaf } from './leaves.js';
import { ConfigError, otherProblem, settingProblem } from './problems.js';
import { readConfigFile, unknownFileKeys } from './configFile.js';

export type { ConfigWarning } from './unknownVariables.js';
export { ConfigError, type ConfigProblem } from './problems.js';
export { schemaLeaves, type SchemaLeaf } from './leaves.js';

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
    ...general.map((message) => otherProblem(null, message, message)),
    ...[...leaves.keys()]
      .filter((key) => messages.has(key))
      .map((key) =>
        settingProblem(key, leaves.get(key)!, messages.get(key)!, rawText(key) ?? pathValue(raw, key)),
      ),
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

function registerSecrets(value: unknown, leaf: SchemaLeaf): void {
  if (typeof value !== 'string' || value === '') return;
  for (const secret of isConnectionString(leaf) ? credentialsOf(value) : [value]) registerSecret(secret);
}
