/**
 * MongoClient options for the CLI's short-lived connections. The CLI wants a quick answer, so it picks
 * a short server selection timeout, but only where the connection string sets none: timeouts in the
 * URI (serverSelectionTimeoutMS, connectTimeoutMS) are the operator's and win. The deadline of a whole
 * check is derived from them, so a check never gives up before the driver would.
 */
import type { MongoClientOptions } from 'mongodb';
import { uriOption } from '../config/connectionString.js';

const CLI_SERVER_SELECTION_MS = 5000;
/** Time a check may take beyond the driver's own timeouts (a command after server selection). */
const CHECK_SLACK_MS = 3000;
const MIN_CHECK_MS = 8000;

export interface CliMongo {
  options: MongoClientOptions;
  /** How long one check against this deployment may take before it is reported as hanging. */
  checkTimeoutMs: number;
}

export function cliMongo(uri: string, appName: string): CliMongo {
  const fromUri = (name: string): number | undefined => {
    const value = Number(uriOption(uri, name));
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };
  const selection = fromUri('serverSelectionTimeoutMS');
  const connect = fromUri('connectTimeoutMS');
  const options: MongoClientOptions = uriOption(uri, 'appName') === undefined ? { appName } : {};
  if (selection === undefined) options.serverSelectionTimeoutMS = CLI_SERVER_SELECTION_MS;
  return {
    options,
    checkTimeoutMs: Math.max(
      MIN_CHECK_MS,
      (selection ?? CLI_SERVER_SELECTION_MS) + CHECK_SLACK_MS,
      (connect ?? 0) + CHECK_SLACK_MS,
    ),
  };
}
