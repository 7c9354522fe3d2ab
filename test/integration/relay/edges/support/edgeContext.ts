/**
 * Relay tests at the edges need what the shared fixture leaves fixed: a checkpoint collection of their
 * own (so the default checkpoint ID of one test never meets another's), the option to run without
 * RELAY_CHECKPOINT_ID, and a way to tell "refused with an exit code" from "became ready".
 */
import { randomBytes } from 'node:crypto';
import type { Document } from 'mongodb';
import { relayTestContext, type RelayTestContext } from '../../../../support/relayFixture.js';
import type { RelayProcess } from '../../../../support/relayProcess.js';
import { waitFor } from '../../../../support/wait.js';

export interface EdgeContext extends RelayTestContext {
  /** The checkpoint collection of this test (in mongo_kafka_relay). */
  checkpointCollection: string;
  /** env() without RELAY_CHECKPOINT_ID and with this test's checkpoint collection. */
  envWithoutCheckpointId(overrides?: Record<string, string>): Record<string, string>;
  /** The checkpoint document `id` in this test's checkpoint collection. */
  checkpointDoc(id: string): Promise<Document | null>;
  checkpointDocs(): Promise<Document[]>;
}

export async function edgeContext(name: string, mongoUri?: string): Promise<EdgeContext> {
  const ctx = await relayTestContext(name, mongoUri);
  const checkpointCollection = `checkpoints_${randomBytes(4).toString('hex')}`;
  const collection = () => ctx.mongo.db('mongo_kafka_relay').collection<Document>(checkpointCollection);
  return {
    ...ctx,
    checkpointCollection,
    envWithoutCheckpointId: (overrides = {}) => {
      const env = ctx.env({ RELAY_CHECKPOINT_COLLECTION: checkpointCollection, ...overrides });
      delete env.RELAY_CHECKPOINT_ID;
      return env;
    },
    checkpointDoc: (id) => collection().findOne({ _id: id as never }),
    checkpointDocs: () => collection().find().toArray(),
    close: async () => {
      await collection()
        .drop()
        .catch(() => undefined);
      await ctx.close();
    },
  };
}

export type StartOutcome = { ready: true } | { ready: false; code: number };

/** Resolves when the relay is ready to publish, or when it exited first (with its code). */
export async function readyOrExit(relay: RelayProcess, timeoutMs = 60_000): Promise<StartOutcome> {
  const exited = relay.exited.then((code): StartOutcome => ({ ready: false, code }));
  const ready = waitFor(
    async () =>
      relay.child.exitCode === null &&
      (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`).catch(() => null))?.status === 200,
    { timeoutMs, message: 'the relay to report ready or exit' },
  ).then((): StartOutcome => ({ ready: true }));
  return Promise.race([exited, ready]);
}

/** The `_id` values of the documents whose changes a list of records carries. */
export function documentIds(records: { headers: Record<string, string> }[]): number[] {
  return records
    .map((r) => JSON.parse(r.headers['document-key'] ?? 'null') as { _id: { $numberInt: string } } | null)
    .map((k) => Number(k?._id.$numberInt))
    .sort((a, b) => a - b);
}
