/**
 * How a command shows a configuration it could not load, and the warnings of one it could: on stderr
 * for people, or, with --json, as one JSON document on stdout that a CI job or script can parse.
 */
import type { Logger } from 'pino';
import { ConfigError, loadConfigReport, type ConfigReport, type LoadOptions } from '../config/load.js';
import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';

export interface CommandConfigOptions {
  config?: string;
  json?: boolean;
}

/**
 * Loads the configuration for a command. A ConfigError becomes exit 3; with --json its report is
 * printed here (the error is then marked logged so it is not printed twice).
 */
export function loadForCommand(opts: CommandConfigOptions, purpose: LoadOptions['purpose']): ConfigReport {
  try {
    return loadConfigReport({ configFile: opts.config, purpose });
  } catch (error) {
    if (!(error instanceof ConfigError) || !opts.json) throw error;
    const report = {
      ok: false,
      configuration: {
        ok: false,
        problems: error.problems.map(({ variable, key, message, value }) => ({
          variable,
          key,
          message,
          value,
        })),
        warnings: error.warnings,
      },
      checks: [],
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const exit = new RelayExit(error.message, ExitCode.config);
    exit.logged = true;
    throw exit;
  }
}

/** Warnings of a command that prints its own output: on stderr, out of the way of --json. */
export function printWarnings(warnings: ConfigReport['warnings']): void {
  for (const w of warnings) process.stderr.write(`mongo-kafka-relay: warning: ${w.message}\n`);
}

/** Warnings of the daemon: in its log, one line each, before it connects to anything. */
export function logWarnings(logger: Logger, warnings: ConfigReport['warnings']): void {
  for (const w of warnings) logger.warn({ variable: w.variable, suggestion: w.suggestion }, w.message);
}
