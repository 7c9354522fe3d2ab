/**
 * A configuration problem as the operator sees it: which variable (and config-file key), what is wrong
 * and what is allowed, and the value, redacted when secret and "not set" when absent. One ConfigError
 * carries every problem of a configuration (exit code 3).
 */
import { redactSecrets, redactUri } from './redact.js';
import { isConnectionString, type SchemaLeaf } from './leaves.js';
import type { ConfigWarning } from './unknownVariables.js';

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

/** A problem with one setting. */
export function settingProblem(
  key: string,
  leaf: SchemaLeaf,
  message: string,
  value: unknown,
): ConfigProblem {
  const variable = leaf.env ?? null;
  const shown = showValue(value, leaf);
  const label = variable ? `${variable} (${key})` : key;
  const text = redactSecrets(
    `${label}: ${message}: ${shown === null ? 'value is not set' : `value was ${shown}`}`,
  );
  return { variable, key, message: redactSecrets(message), value: shown, text };
}

/** A problem that is not about one setting's value (a config file, an unknown key). */
export function otherProblem(key: string | null, message: string, text: string): ConfigProblem {
  return { variable: null, key, message: redactSecrets(message), value: null, text: redactSecrets(text) };
}

function showValue(value: unknown, leaf: SchemaLeaf): string | null {
  if (value === null || value === undefined) return null;
  if (leaf.sensitive) {
    if (value === '') return null;
    return isConnectionString(leaf) && typeof value === 'string'
      ? JSON.stringify(redactUri(value))
      : '[redacted]';
  }
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 300 ? `${json.slice(0, 300)}…` : json;
}
