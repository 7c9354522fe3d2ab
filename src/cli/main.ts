#!/usr/bin/env node
/**
 * The `mongo-kafka-relay` command. A thin layer: flags become one more configuration layer, and every
 * error becomes a documented exit code (see ../app/exitCodes.ts). When the command is done the process
 * ends with that code, whatever handles a library may have left open: a relay that failed must never
 * linger with its probes answering.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { createLogger } from '../app/logger.js';
import { ExitCode } from '../app/exitCodes.js';
import { RelayExit } from '../app/errors.js';
import { VERSION } from '../app/version.js';
import { redactSecrets } from '../config/redact.js';
import { runDaemon } from './runDaemon.js';
import { registerOperatorCommands } from './commands.js';
import { loadForCommand, logWarnings } from './configOutput.js';
import { registerConsumerRedriveCommand } from './consumerRedrive.js';
import { registerSnapshotCommand } from './snapshotCommand.js';

export function buildProgram(): Command {
  const program = new Command('mongo-kafka-relay')
    .description(
      'Relays MongoDB change streams to Kafka, keyed by change ID, with the resume token persisted after every event.',
    )
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError();

  program
    .command('start')
    .description('run the daemon')
    .option('--config <file>', 'configuration file (JSON or YAML); environment variables override it')
    .action(async (opts: { config?: string }) => {
      const { config, warnings } = loadForCommand(opts, 'daemon');
      const logger = createLogger(config.log.level);
      logWarnings(logger, warnings);
      process.exitCode = await runDaemon(config, logger);
    });

  registerOperatorCommands(program);
  registerConsumerRedriveCommand(program);
  registerSnapshotCommand(program);
  return program;
}

async function main(argv: string[]): Promise<never> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  }
  await flush(process.stdout);
  await flush(process.stderr);
  process.exit(process.exitCode ?? ExitCode.ok);
}

/** Resolves once everything written so far has been handed to the OS. */
function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write('', () => resolve());
  });
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // --help and --version "fail" with code 0; real usage errors were already printed by commander.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`mongo-kafka-relay: ${error.message}\n`);
    for (const w of error.warnings) process.stderr.write(`mongo-kafka-relay: warning: ${w.message}\n`);
    return ExitCode.config;
  }
  if (error instanceof RelayExit) {
    if (!error.logged) process.stderr.write(`mongo-kafka-relay: ${redactSecrets(error.message)}\n`);
    return error.exitCode;
  }
  process.stderr.write(
    `mongo-kafka-relay: ${redactSecrets(error instanceof Error ? error.message : String(error))}\n`,
  );
  return ExitCode.failure;
}

await main(process.argv);
