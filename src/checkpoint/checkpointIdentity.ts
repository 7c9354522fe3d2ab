/**
 * Which checkpoint a starting relay continues — pure decisions, unit-tested.
 *
 * The checkpoint ID is RELAY_CHECKPOINT_ID or "default", never derived from the watch configuration
 * (like Debezium's offsets, keyed by the connector's name): editing RELAY_WATCH, RELAY_PIPELINE or
 * RELAY_OPERATION_TYPES keeps the ID, and the fingerprint stored with the checkpoint decides between
 * "continue" and a refusal that says what to do (src/app/resumePoint.ts). A start therefore either
 * continues from the previous position or refuses; it never starts at "now" by accident.
 *
 * Versions before 0.2 derived the ID from the fingerprint (`relay-<16 hex>`), and such checkpoints live
 * in deployed checkpoint collections. When RELAY_CHECKPOINT_ID is unset and "default" has no position
 * yet, they are considered:
 *  - the one of this very configuration (`relay-<our fingerprint>`) is adopted: copied into "default";
 *  - otherwise a single one is adopted only with RELAY_ALLOW_WATCH_CHANGE=true (it is a configuration
 *    change like any other);
 *  - anything else is ambiguous (several relays shared the store, or old configurations left theirs)
 *    and refused with the exact settings for each choice.
 * An explicit RELAY_CHECKPOINT_ID never looks at them: naming a checkpoint is the operator's choice.
 */
import { DEFAULT_CHECKPOINT_ID, type RelayConfig } from '../config/settings.js';
import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';
import type { CheckpointDoc } from './checkpointStore.js';

export { DEFAULT_CHECKPOINT_ID };
import { legacyCheckpointId } from './legacyCheckpointId.js';
export { LEGACY_ID_RANGE, isLegacyCheckpointId, legacyCheckpointId } from './legacyCheckpointId.js';

export function hasPosition(doc: CheckpointDoc | null | undefined): boolean {
  return Boolean(doc?.token || doc?.startAt);
}

export interface LegacyCheckpoint {
  doc: CheckpointDoc;
  /** A relay of the earlier version holds it right now. */
  leaseLive: boolean;
}

export type CheckpointChoice =
  /** Use the configured checkpoint as it is (it may have no position yet: a fresh start). */
  | { kind: 'configured' }
  /** Copy this earlier version's checkpoint into the configured one first, then continue from it. */
  | { kind: 'adopt'; from: LegacyCheckpoint };

/**
 * Decide which checkpoint to continue. `legacy` is only consulted when the ID is the default and the
 * default checkpoint has no position. Throws a RelayExit (code 3) when the choice is the operator's.
 */
export function chooseCheckpoint(
  configured: CheckpointDoc | null,
  legacy: readonly LegacyCheckpoint[],
  config: RelayConfig,
): CheckpointChoice {
  const d = config.derived;
  if (hasPosition(configured) || !d.checkpointIdDefault || legacy.length === 0) return { kind: 'configured' };
  const ours = legacy.find((l) => l.doc._id === legacyCheckpointId(d.fingerprint));
  if (ours) return { kind: 'adopt', from: ours };
  if (legacy.length === 1 && config.relay.allowWatchChange) return { kind: 'adopt', from: legacy[0]! };
  throw new LegacyCheckpointError(legacy, config);
}

/** The derived-ID checkpoint of this configuration, if an earlier version left one (for hints). */
export function legacyOfThisConfiguration(
  legacy: readonly LegacyCheckpoint[],
  config: RelayConfig,
): LegacyCheckpoint | undefined {
  return legacy.find((l) => l.doc._id === legacyCheckpointId(config.derived.fingerprint));
}

export class LegacyCheckpointError extends RelayExit {
  constructor(legacy: readonly LegacyCheckpoint[], config: RelayConfig) {
    const list = legacy.map((l) => `${l.doc._id} (${describeSelection(l.doc)})`).join(', ');
    const first = legacy[0]!.doc._id;
    const continueOne =
      legacy.length === 1
        ? `to continue from it with this configuration, set RELAY_ALLOW_WATCH_CHANGE=true (it is adopted as "${DEFAULT_CHECKPOINT_ID}"), ` +
          `or keep it under its own name with RELAY_CHECKPOINT_ID=${first} RELAY_ALLOW_WATCH_CHANGE=true`
        : `several relays may have shared this checkpoint store: give each relay its own RELAY_CHECKPOINT_ID; ` +
          `to continue one of these, set RELAY_CHECKPOINT_ID=<its ID> (and RELAY_ALLOW_WATCH_CHANGE=true if its watch configuration differs), e.g. RELAY_CHECKPOINT_ID=${first}`;
    super(
      `no checkpoint "${config.derived.checkpointId}" yet, but an earlier version kept checkpoints under IDs derived from ` +
        `the watch configuration: ${list}; none of them is this relay's watch configuration (${describeConfigured(config)}). ` +
        `Nothing was started. ${capitalize(continueOne)}; to start a new checkpoint at RELAY_START_AT instead, set RELAY_CHECKPOINT_ID=${DEFAULT_CHECKPOINT_ID}.`,
      ExitCode.config,
    );
    this.name = 'LegacyCheckpointError';
  }
}

/** "watch a.b; pipeline [...]; operation types insert" of a stored checkpoint (as far as it says). */
export function describeSelection(doc: CheckpointDoc): string {
  const s = doc.selection;
  if (s) return formatSelection(s.watch, s.pipeline, s.operationTypes);
  return `watch ${doc.watch?.join(',') ?? 'unknown'}`;
}

export function describeConfigured(config: RelayConfig): string {
  const s = config.derived.selection;
  return formatSelection(s.watch, s.pipeline, s.operationTypes);
}

function formatSelection(watch: string[], pipeline: string, operationTypes: string[]): string {
  return `watch ${watch.join(',')}; pipeline ${pipeline}; operation types ${operationTypes.length > 0 ? operationTypes.join(',') : 'all'}`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
