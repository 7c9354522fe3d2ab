/**
 * Where a starting relay resumes, decided from the stored checkpoint and the configuration — pure
 * functions, so each rule is unit-tested:
 *  1. a checkpoint token: `startAfter` it (the checkpoint always wins);
 *  2. otherwise RELAY_START_AFTER_TOKEN, then RELAY_START_AT (cluster time or date), then "now";
 *  3. a checkpoint written under another watch fingerprint is refused unless explicitly allowed.
 */
import type { CheckpointDoc } from '../checkpoint/checkpointStore.js';
import type { RelayConfig } from '../config/settings.js';
import type { StartPosition } from '../source/changeSource.js';
import { formatTarget } from '../source/watchTargets.js';
import { WatchMismatchError } from './errors.js';

export interface ResumePoint {
  start: StartPosition;
  /** What decided it, for the "resume point" log line. */
  from: 'checkpoint' | 'RELAY_START_AFTER_TOKEN' | 'RELAY_START_AT' | 'now';
}

export function resumePoint(checkpoint: CheckpointDoc | null, config: RelayConfig): ResumePoint {
  if (checkpoint?.token) return { start: { startAfter: checkpoint.token }, from: 'checkpoint' };
  const initial = config.derived.initialPosition;
  if (initial.kind === 'token')
    return { start: { startAfter: initial.token }, from: 'RELAY_START_AFTER_TOKEN' };
  if (initial.kind === 'clusterTime')
    return { start: { startAtOperationTime: initial.time }, from: 'RELAY_START_AT' };
  return { start: { now: true }, from: 'now' };
}

/**
 * 'same' when the checkpoint may be resumed as is; 'allowed-change' when it was written under another
 * watch configuration and RELAY_ALLOW_WATCH_CHANGE says to go on; throws WatchMismatchError otherwise.
 */
export function checkWatchFingerprint(
  checkpoint: CheckpointDoc | null,
  config: RelayConfig,
): 'same' | 'allowed-change' {
  const d = config.derived;
  if (!checkpoint?.token || !checkpoint.fingerprint || checkpoint.fingerprint === d.fingerprint)
    return 'same';
  if (config.relay.allowWatchChange) return 'allowed-change';
  throw new WatchMismatchError(d.checkpointId, checkpoint.watch, d.targets.map(formatTarget));
}
