/**
 * Running the daemon in this process: signals handled once (the first starts a graceful stop, a second
 * forces exit), an unref'd watchdog in case the graceful stop itself hangs.
 */
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/settings.js';
import { RelayApp } from '../app/relayApp.js';
import { RelayExit } from '../app/errors.js';
import { ExitCode, type ExitCodeValue } from '../app/exitCodes.js';

export async function runDaemon(config: RelayConfig, logger: Logger): Promise<ExitCodeValue> {
  const app = new RelayApp(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(ExitCode.failure);
    }
    app.requestStop(signal);
    const watchdog = setTimeout(() => {
      logger.error('graceful stop did not finish in time; exiting');
      process.exit(ExitCode.failure);
    }, config.relay.shutdownTimeoutMs + 5000);
    watchdog.unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await app.run();
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof RelayExit) {
      if (!error.logged) logger.error({ exitCode: error.exitCode }, error.message);
      return error.exitCode;
    }
    logger.error({ err: error }, 'relay failed');
    return ExitCode.failure;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // Work abandoned at the shutdown deadline (a stuck produce request, an unreachable MongoDB) may
    // keep sockets open; they must not keep the process alive past it. Unref'd: a clean run exits first.
    setTimeout(() => process.exit(), 250).unref();
  }
}
