/**
 * Operator commands. Each loads the same configuration as the daemon (environment + --config), so the
 * checkpoint they act on is exactly the one the daemon uses. Commands that only touch the checkpoint
 * do not need Kafka's settings; with --json, configuration errors come out as JSON too.
 */
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import type { RelayConfig } from '../config/settings.js';
import { createLogger } from '../app/logger.js';
import { ExitCode } from '../app/exitCodes.js';
import { RelayExit } from '../app/errors.js';
import { redactSecrets } from '../config/redact.js';
import { LeaseHeldError } from '../checkpoint/checkpointStore.js';
import { parseResumeToken, clusterTimeOfToken, TokenFormatError } from '../source/resumeToken.js';
import { runDaemon } from './runDaemon.js';
import { withStore, describeCheckpoint, printCheckpoint } from './checkpointView.js';
import { fetchDaemonStatus, printDaemonStatus } from './daemonStatus.js';
import { runChecks } from './checkConfig.js';
import { loadForCommand, logWarnings, printWarnings } from './configOutput.js';

interface CommonOptions {
  config?: string;
  json?: boolean;
  force?: boolean;
}

/** The configuration of a command that reads or changes only the checkpoint (Kafka not needed). */
function checkpointConfig(opts: CommonOptions): RelayConfig {
  const { config, warnings } = loadForCommand(opts, 'checkpoint');
  printWarnings(warnings);
  return config;
}

const configOption = (): Option =>
  new Option('--config <file>', 'configuration file (JSON or YAML); environment variables override it');

export function registerOperatorCommands(program: Command): void {
  program
    .command('resume-from-token')
    .description(
      "set this stream's checkpoint to <token> and start; the first change published is the one after it",
    )
    .argument('<token>', 'resume token: the hex _data string, or {"_data":"<hex>"}')
    .addOption(configOption())
    .option('--no-start', 'only set the checkpoint')
    .option('--force', 'even while another relay holds the lease')
    .action(async (tokenText: string, opts: CommonOptions & { start: boolean }) => {
      const token = parseTokenArgument(tokenText);
      const { config, warnings } = loadForCommand(opts, opts.start ? 'daemon' : 'checkpoint');
      await withStore(config, (store) => setToken(store, token, opts.force ?? false));
      process.stdout.write(`checkpoint ${config.derived.checkpointId} set to ${token._data}\n`);
      if (!opts.start) printWarnings(warnings);
      else {
        const logger = createLogger(config.log.level);
        logWarnings(logger, warnings);
        process.exitCode = await runDaemon(config, logger);
      }
    });

  const token = program.command('token').description("show or change this stream's checkpoint");
  token
    .command('show')
    .description(
      'the checkpoint: token, cluster time, when written, lag behind now, lease, snapshot progress and request',
    )
    .addOption(configOption())
    .option('--json', 'machine-readable output')
    .action(async (opts: CommonOptions) => {
      const config = checkpointConfig(opts);
      const view = await withStore(config, async (store) => describeCheckpoint(store, await store.read()));
      printCheckpoint(view, opts.json ?? false);
    });
  token
    .command('set')
    .description('set the checkpoint; the next start publishes the changes after <token>')
    .argument('<token>', 'resume token: the hex _data string, or {"_data":"<hex>"}')
    .addOption(configOption())
    .option('--force', 'even while another relay holds the lease')
    .action(async (tokenText: string, opts: CommonOptions) => {
      const parsed = parseTokenArgument(tokenText);
      const config = checkpointConfig(opts);
      await withStore(config, (store) => setToken(store, parsed, opts.force ?? false));
      process.stdout.write(`checkpoint ${config.derived.checkpointId} set to ${parsed._data}\n`);
    });
  token
    .command('clear')
    .description('delete the checkpoint; the next start begins at RELAY_START_AT')
    .addOption(configOption())
    .option('--yes', 'confirm: changes since the checkpoint will not be re-read')
    .option('--force', 'even while another relay holds the lease')
    .action(async (opts: CommonOptions & { yes?: boolean }) => {
      if (!opts.yes) {
        throw new RelayExit(
          'token clear deletes the checkpoint: the next start begins at RELAY_START_AT, not where it left off. Repeat with --yes to confirm.',
          ExitCode.usage,
        );
      }
      const config = checkpointConfig(opts);
      if (config.relay.delivery === 'exactly-once') {
        const d = config.derived;
        throw new RelayExit(
          `RELAY_DELIVERY=exactly-once: the committed position of checkpoint "${d.checkpointId}" is in Kafka ` +
            `(${config.kafka.positionsTopic}, key "${d.checkpointId}"); token clear would empty only its MongoDB mirror ` +
            'and the relay would resume from Kafka. Use `token set <token>` to move the position, or write a tombstone ' +
            `for key "${d.checkpointId}" to ${config.kafka.positionsTopic} (e.g. kcat -P -b <brokers> -t ${config.kafka.positionsTopic} -K: -Z <<< '${d.checkpointId}:') and then run token clear with RELAY_DELIVERY=at-least-once.`,
          ExitCode.usage,
        );
      }
      const existed = await withStore(config, (store) =>
        leaseChecked(() => store.clear(opts.force ?? false)),
      );
      process.stdout.write(
        existed
          ? `checkpoint ${config.derived.checkpointId} cleared\n`
          : `checkpoint ${config.derived.checkpointId} did not exist\n`,
      );
    });

  program
    .command('status')
    .description('the checkpoint and, when the daemon is reachable, its readiness and key metrics')
    .addOption(configOption())
    .option('--json', 'machine-readable output')
    .option('--url <url>', 'daemon metrics endpoint (default: http://METRICS_HOST:METRICS_PORT)')
    .action(async (opts: CommonOptions & { url?: string }) => {
      const config = checkpointConfig(opts);
      // Each half is reported on its own: an unreachable checkpoint store must not hide the daemon's
      // readiness (often the very thing an operator runs `status` for), nor the other way round.
      const checkpoint = await withStore(config, async (store) => ({
        reachable: true as const,
        ...describeCheckpoint(store, await store.read()),
      })).catch((error: unknown) => ({
        reachable: false as const,
        checkpointId: config.derived.checkpointId,
        error: redactSecrets((error as Error).message),
      }));
      const url =
        opts.url ??
        `http://${config.metrics.host === '0.0.0.0' ? '127.0.0.1' : config.metrics.host}:${config.metrics.port}`;
      const daemon = await fetchDaemonStatus(url);
      if (!checkpoint.reachable) process.exitCode = ExitCode.failure;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ checkpoint, daemon }, null, 2)}\n`);
        return;
      }
      if (checkpoint.reachable) printCheckpoint(checkpoint, false);
      else
        process.stdout.write(
          `checkpoint   ${checkpoint.checkpointId}: not reachable (${checkpoint.error})\n`,
        );
      printDaemonStatus(daemon);
    });

  program
    .command('check-config')
    .description('validate the configuration and (unless --offline) connectivity: one line per check')
    .addOption(configOption())
    .option('--json', 'machine-readable output (configuration errors included)')
    .option('--offline', 'validate the configuration only, without connecting (for CI linting of manifests)')
    .action(async (opts: CommonOptions & { offline?: boolean }) => {
      const { config, warnings } = loadForCommand(opts, 'daemon');
      const ok = await runChecks(config, {
        json: opts.json ?? false,
        offline: opts.offline ?? false,
        warnings,
      });
      process.exitCode = ok ? ExitCode.ok : ExitCode.failure;
    });
}

function parseTokenArgument(text: string): { _data: string } {
  try {
    return parseResumeToken(text);
  } catch (error) {
    if (error instanceof TokenFormatError)
      throw new RelayExit(`invalid token: ${error.message}`, ExitCode.usage);
    throw error;
  }
}

async function setToken(
  store: import('../checkpoint/checkpointStore.js').CheckpointStore,
  token: { _data: string },
  force: boolean,
): Promise<void> {
  await leaseChecked(() => store.setToken(token, clusterTimeOfToken(token), `cli@${hostname()}`, force));
}

async function leaseChecked<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof LeaseHeldError) throw new RelayExit(error.message, ExitCode.lease);
    throw error;
  }
}
