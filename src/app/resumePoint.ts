/**
 * Where a starting relay resumes, decided from the stored checkpoint and the configuration — pure
 * functions, so each rule is unit-tested:
 *  1. a checkpoint token: `startAfter` it (the checkpoint always wins) — except when the watch
 *     configuration changed the stream's scope (e.g. from one collection to a whole database or back):
 *     a token of an event is only accepted by a stream that contains that event, so the relay resumes
 *     AT the token's cluster time instead (inclusive: at worst re-publications, never a gap);
 *  2. a checkpoint `startAt` (a start persisted before the first token): `startAtOperationTime` it;
 *  3. otherwise RELAY_START_AFTER_TOKEN, then RELAY_START_AT (cluster time or date), then "now";
 *  4. a checkpoint written under another watch fingerprint is refused unless explicitly allowed.
 */
import type { CheckpointDoc } from '../checkpoint/checkpointStore.js';
import type { RelayConfig } from '../config/settings.js';
import type { StartPosition } from '../source/changeSource.js';
import { clusterTimeOfToken } from '../source/resumeToken.js';
import { formatTarget, parseWatchTargets, streamScope, type StreamScope } from '../config/watchTargets.js';
import { WatchMismatchError } from './errors.js';

export interface ResumePoint {
  start: StartPosition;
  /** What decided it, for the "resume point" log line. */
  from:
    | 'checkpoint'
    | 'checkpoint cluster time (stream scope changed)'
    | 'RELAY_START_AFTER_TOKEN'
    | 'RELAY_START_AT'
    | 'now';
}

export function resumePoint(checkpoint: CheckpointDoc | null, config: RelayConfig): ResumePoint {
  if (checkpoint?.token) {
    const at = clusterTimeOfToken(checkpoint.token) ?? checkpoint.clusterTime;
    if (at && scopeChanged(checkpoint, config.derived.scope)) {
      return { start: { startAtOperationTime: at }, from: 'checkpoint cluster time (stream scope changed)' };
    }
    return { start: { startAfter: checkpoint.token }, from: 'checkpoint' };
  }
  if (checkpoint?.startAt) return { start: { startAtOperationTime: checkpoint.startAt }, from: 'checkpoint' };
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
 * `legacyHint`: an earlier version's derived-ID checkpoint of this configuration, named in the refusal.
 */
export function checkWatchFingerprint(
  checkpoint: CheckpointDoc | null,
  config: RelayConfig,
  legacyHint: string | null = null,
): 'same' | 'allowed-change' {
  const d = config.derived;
  const positioned = Boolean(checkpoint?.token || checkpoint?.startAt);
  if (!positioned || !checkpoint?.fingerprint || checkpoint.fingerprint === d.fingerprint) return 'same';
  if (config.relay.allowWatchChange) return 'allowed-change';
  throw new WatchMismatchError(d.checkpointId, describeDifferences(checkpoint, config), legacyHint);
}

/** "stored: a.b; now: a.c", then the pipeline and operation types where they differ (and are known). */
export function describeDifferences(checkpoint: CheckpointDoc, config: RelayConfig): string {
  const now = config.derived.selection;
  const parts = [
    `stored: ${checkpoint.watch?.join(',') ?? 'unknown'}; now: ${config.derived.targets.map(formatTarget).join(',')}`,
  ];
  const stored = checkpoint.selection;
  if (stored && stored.pipeline !== now.pipeline)
    parts.push(`RELAY_PIPELINE stored: ${stored.pipeline}; now: ${now.pipeline}`);
  if (stored && stored.operationTypes.join(',') !== now.operationTypes.join(',')) {
    const show = (t: string[]) => (t.length > 0 ? t.join(',') : 'all');
    parts.push(
      `RELAY_OPERATION_TYPES stored: ${show(stored.operationTypes)}; now: ${show(now.operationTypes)}`,
    );
  }
  if (!stored && checkpoint.watch?.join(',') === now.watch.join(','))
    parts.push('RELAY_PIPELINE or RELAY_OPERATION_TYPES changed');
  return parts.join('; ');
}

/** Was the checkpoint written by a stream of another scope than the one configured now? */
function scopeChanged(checkpoint: CheckpointDoc, scope: StreamScope): boolean {
  if (!checkpoint.watch || checkpoint.watch.length === 0) return false;
  let stored: StreamScope;
  try {
    stored = streamScope(parseWatchTargets(checkpoint.watch.join(',')));
  } catch {
    return false;
  }
  return JSON.stringify(stored) !== JSON.stringify(scope);
}
