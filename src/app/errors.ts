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
