/**
 * The --config file: JSON or YAML, nested keys as in the schema. A file that cannot be read or parsed
 * is a configuration error of its own; keys that are not settings are refused, naming the closest one.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { closestName } from './closestName.js';
import type { SchemaLeaf } from './leaves.js';
import { ConfigError, otherProblem, type ConfigProblem } from './problems.js';

export function readConfigFile(file: string): object {
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
  return new ConfigError([otherProblem(null, message, `--config ${file}: ${message}`)]);
}

/** Keys of the config file that are not settings: refused, with the closest setting named. */
export function unknownFileKeys(
  file: object,
  fileName: string,
  leaves: Map<string, SchemaLeaf>,
): ConfigProblem[] {
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
    return otherProblem(key, message, `${key} (in --config ${fileName}): ${message}`);
  });
  return [
    ...groupProblems,
    ...keys.map((key) => {
      const near = closestName(key, leaves.keys());
      const hint = near ? `; did you mean ${near} (${leaves.get(near)?.env ?? near})?` : '';
      const message = `is not a setting${hint}`;
      return otherProblem(key, message, `${key} (in --config ${fileName}): ${message}`);
    }),
  ];
}
