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
  /**
   * @param differences what differs, e.g. "stored: a.b; now: a.c" (targets first, then pipeline and
   *   operation types when they differ)
   * @param legacyHint the ID under which an earlier version kept this very configuration's checkpoint
   */
  constructor(checkpointId: string, differences: string, legacyHint: string | null = null) {
    super(
      `checkpoint "${checkpointId}" was written by a relay with another watch configuration (${differences}). ` +
        'Nothing was started. Choose one: continue from the stored position with the new configuration: ' +
        'set RELAY_ALLOW_WATCH_CHANGE=true (namespaces added are relayed from that position on, removed ones no longer); ' +
        'start over: mongo-kafka-relay token clear --yes (the next start begins at RELAY_START_AT); ' +
        `or, if this is another relay sharing the checkpoint store, give it its own RELAY_CHECKPOINT_ID` +
        (legacyHint
          ? ` (an earlier version kept this configuration's checkpoint as ${legacyHint}: RELAY_CHECKPOINT_ID=${legacyHint} continues it).`
          : '.'),
      ExitCode.config,
    );
  }
}

/** An event the change stream cannot deliver, under RELAY_ON_UNREADABLE_EVENT=fail. */
export class UnreadableEventExit extends RelayExit {
  constructor(checkpointId: string, description: string) {
    super(
      `checkpoint "${checkpointId}": ${description}. The relay stopped before it (RELAY_ON_UNREADABLE_EVENT=fail); ` +
        'restarting stops here again. Options: RELAY_ON_UNREADABLE_EVENT=skip (a dead-letter record names the change and ' +
        'the relay moves on); project large fields away with RELAY_PIPELINE; RELAY_FULL_DOCUMENT=default or ' +
        'whenAvailable instead of updateLookup/required; on MongoDB 7.0+ (6.0.9+) events over 16 MB are split ' +
        'and reassembled by the relay; or move the checkpoint past it: mongo-kafka-relay token set <its change ID>.',
      ExitCode.unreadableEvent,
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
        '(3) skip to now: RELAY_ON_HISTORY_LOST=restart-from-now; ' +
        '(4) continue from now after copying the watched collections again: RELAY_SNAPSHOT=when-needed. ' +
        'Consider a larger oplog (replSetResizeOplog).',
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
