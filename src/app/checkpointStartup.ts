/**
 * The start of a run, from "connected" to "ready to publish", in the one order that makes a start
 * safe (the composition root calls these steps; each is small and says why it is where it is):
 *  1. beforeLease():   refuse a checkpoint of another watch configuration (exit 3) BEFORE waiting
 *                      for its lease — a second relay sharing the default ID must not wait forever;
 *  2. (the lease is acquired)
 *  3. underLease():    decide again with the lease held, adopt an earlier version's derived-ID
 *                      checkpoint if that is the choice, and return the checkpoint to resume;
 *  4. (the source resolves its concrete start: startingPosition())
 *  5. persistStart():  write that start (and a new snapshot's plan, src/app/snapshotStartup.ts) with
 *                      this configuration's identity, BEFORE anything is
 *                      published — a crash or a Kafka outage after a first start never moves the start
 *                      to a later "now", and the stored fingerprint describes this run from its start.
 */
import type { Logger } from 'pino';
import type { Timestamp } from 'mongodb';
import type { RelayConfig } from '../config/settings.js';
import {
  chooseCheckpoint,
  describeSelection,
  legacyOfThisConfiguration,
  type LegacyCheckpoint,
} from '../checkpoint/checkpointIdentity.js';
import type {
  CheckpointDoc,
  CheckpointIdentity,
  CheckpointStore,
  StoredPosition,
} from '../checkpoint/checkpointStore.js';
import type { ConcreteStart } from '../source/changeSource.js';
import type { StoredSnapshot } from '../snapshot/snapshotPlan.js';
import { clusterTimeOfToken, sameToken } from '../source/resumeToken.js';
import { formatTarget } from '../config/watchTargets.js';
import { checkWatchFingerprint } from './resumePoint.js';
import { RelayExit } from './errors.js';
import { ExitCode } from './exitCodes.js';

type Store = Pick<CheckpointStore, 'checkpointId' | 'read' | 'legacyCheckpoints' | 'adopt' | 'persistStart'>;

/** Step 1: throws a RelayExit (3) for a start that is the operator's choice; touches nothing. */
export async function beforeLease(store: Store, config: RelayConfig): Promise<void> {
  await decide(store, config);
}

/** Step 3: the checkpoint to resume (adopted from an earlier version when that is the choice). */
export async function underLease(
  store: Store,
  owner: string,
  config: RelayConfig,
  logger: Logger,
): Promise<CheckpointDoc | null> {
  const { checkpoint, choice } = await decide(store, config);
  if (choice.kind === 'configured') return checkpoint;
  const legacy = choice.from;
  if (legacy.leaseLive) {
    const holder = legacy.doc.lease;
    throw new RelayExit(
      `an earlier version's relay holds checkpoint "${legacy.doc._id}" (${holder?.owner ?? 'unknown'} on host ${holder?.host ?? 'unknown'}); ` +
        `stop it first — this relay then adopts its position as "${store.checkpointId}"`,
      ExitCode.lease,
    );
  }
  await store.adopt(owner, legacy.doc);
  logger.warn(
    {
      checkpointId: store.checkpointId,
      adoptedFrom: legacy.doc._id,
      stored: describeSelection(legacy.doc),
      token: legacy.doc.token?._data ?? null,
    },
    `adopted the checkpoint an earlier version kept under a derived ID; it continues as "${store.checkpointId}"`,
  );
  return store.read();
}

/** Step 5: persist where this run starts (see the module header). */
export async function persistStart(
  store: Store,
  owner: string,
  start: ConcreteStart,
  checkpoint: CheckpointDoc | null,
  config: RelayConfig,
  snapshot: StoredSnapshot | null = null,
): Promise<PersistedStart> {
  const position = storedPosition(start, checkpoint);
  const writtenAt = await store.persistStart(owner, position, identity(config), snapshot);
  return { position, writtenAt };
}

/** The start as written, and when: a checkpoint write like any other, so its age counts from here. */
export interface PersistedStart {
  position: StoredPosition;
  writtenAt: Date;
}

/** This configuration's identity, as stored with every checkpoint write. */
export function identity(config: RelayConfig): CheckpointIdentity {
  const d = config.derived;
  return { fingerprint: d.fingerprint, watch: d.targets.map(formatTarget), selection: d.selection };
}

function storedPosition(start: ConcreteStart, checkpoint: CheckpointDoc | null): StoredPosition {
  if ('startAtOperationTime' in start) return { startAt: start.startAtOperationTime };
  // The same token as the checkpoint keeps its cluster time (of the newest change at or before it).
  const clusterTime: Timestamp | null = sameToken(start.startAfter, checkpoint?.token)
    ? (checkpoint?.clusterTime ?? null)
    : clusterTimeOfToken(start.startAfter);
  return { token: start.startAfter, clusterTime };
}

async function decide(store: Store, config: RelayConfig) {
  const checkpoint = await store.read();
  const needLegacy = config.derived.checkpointIdDefault;
  const legacy: LegacyCheckpoint[] = needLegacy ? await store.legacyCheckpoints() : [];
  // Refuses a checkpoint of another configuration, naming this configuration's derived-ID one if any.
  checkWatchFingerprint(checkpoint, config, legacyOfThisConfiguration(legacy, config)?.doc._id ?? null);
  const choice = chooseCheckpoint(checkpoint, legacy, config);
  return { checkpoint, choice };
}
