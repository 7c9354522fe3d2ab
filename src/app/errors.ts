/** Errors that end the relay, each with the exit code and the operator's next step. */
import { ExitCode, type ExitCodeValue } from './exitCodes.js';

export class RelayExit extends Error {
  /** Set once the message reached the log, so it is not logged twice. */
  logged = false;

  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
    this.name = 'RelayExit';
  }
}

export class WatchMismatchError extends RelayExit {
  constructor(checkpointId: string, stored: string[] | null, configured: string[]) {
    super(
      `checkpoint "${checkpointId}" was written by a relay with another watch configuration ` +
        `(stored: ${stored ? stored.join(',') : 'unknown'}; now: ${configured.join(',')}). ` +
        'Resuming it would skip or mix changes. Use another RELAY_CHECKPOINT_ID, clear the checkpoint ' +
        '(mongo-kafka-relay token clear --yes), or set RELAY_ALLOW_WATCH_CHANGE=true to keep its position.',
      ExitCode.config,
    );
  }
}

export class HistoryLostExit extends RelayExit {
  constructor(checkpointId: string, position: string, clusterTime: string | null, cause: string) {
    super(
      `change stream of checkpoint "${checkpointId}" cannot resume ${position}` +
        `${clusterTime ? ` (cluster time ${clusterTime})` : ''}: that position is no longer in the oplog (${cause}). ` +
        'Changes between it and the oldest oplog entry cannot be relayed. Options: ' +
        '(1) resume from a known token: mongo-kafka-relay resume-from-token <token>; ' +
        '(2) start at a cluster time or date: mongo-kafka-relay token clear --yes, then RELAY_START_AT=<seconds[.inc]|ISO date>; ' +
        '(3) skip to now: RELAY_ON_HISTORY_LOST=restart-from-now. Consider a larger oplog (replSetResizeOplog).',
      ExitCode.historyLost,
    );
  }
}

/** The metrics endpoint cannot bind (the port is taken, the host is not an address of this machine). */
export class MetricsBindExit extends RelayExit {
  constructor(host: string, port: number, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const why =
      code === 'EADDRINUSE'
        ? 'the port is already in use by another process'
        : code === 'EADDRNOTAVAIL'
          ? 'the host is not an address of this machine'
          : code === 'EACCES'
            ? 'the port needs privileges this process does not have'
            : (cause as Error).message;
    super(
      `cannot serve metrics and probes on METRICS_HOST=${host} METRICS_PORT=${port}: ${why} (${code ?? 'error'}). ` +
        'Choose a free METRICS_PORT (0 picks any free port) or an address of this machine as METRICS_HOST, ' +
        'or stop the process that holds the port.',
      ExitCode.config,
    );
  }
}
