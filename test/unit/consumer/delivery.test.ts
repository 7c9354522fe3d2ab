import { expect } from 'chai';
import type { ClientSession, MongoClient, TransactionOptions } from 'mongodb';

import {
  IdempotentHandlerDelivery,
  TransactionalDelivery,
  type AttemptContext,
} from '../../../src/consumer/delivery.js';
import type { SeenMark, SeenStore } from '../../../src/consumer/seenStore.js';
import type { ChangeBatchItem, ChangeEvent, RecordMetadata } from '../../../src/consumer/types.js';

function item(offset: number): ChangeBatchItem {
  const record = {
    topic: 't',
    partition: 1,
    offset: String(offset),
    key: `82${offset}`,
    headers: {},
  } as RecordMetadata;
  return { event: { operationType: 'insert' } as ChangeEvent, changeId: `82${offset}`, record };
}

const context: AttemptContext = {
  topic: 't',
  partition: 1,
  attempt: 1,
  signal: new AbortController().signal,
  heartbeat: async () => undefined,
};

/** A MongoClient whose sessions record the transaction options and run the callback once (no server). */
function fakeClient() {
  const calls: { options: TransactionOptions | undefined; ended: boolean }[] = [];
  const client = {
    startSession: () => {
      const call = { options: undefined as TransactionOptions | undefined, ended: false };
      calls.push(call);
      const session = {
        withTransaction: async (fn: (s: ClientSession) => Promise<void>, options?: TransactionOptions) => {
          call.options = options;
          await fn(session as unknown as ClientSession);
        },
        endSession: async () => {
          call.ended = true;
        },
      };
      return session;
    },
  } as unknown as MongoClient;
  return { client, calls };
}

/** A seen store that records the marks inserted in a transaction, and may report one as existing. */
function fakeStore(outcome: 'inserted' | 'already-seen' = 'inserted') {
  const inserted: SeenMark[][] = [];
  const store = {
    insertMarksInTransaction: async (marks: readonly SeenMark[]) => {
      inserted.push([...marks]);
      return outcome;
    },
  } as unknown as SeenStore;
  return { store, inserted };
}

describe('consumer/delivery', () => {
  describe('TransactionalDelivery', () => {
    it('runs each transaction with readConcern snapshot and writeConcern majority by default', async () => {
      const { client, calls } = fakeClient();
      const delivery = new TransactionalDelivery(
        { kind: 'record', handler: () => undefined },
        client,
        fakeStore().store,
        undefined,
      );
      expect(await delivery.deliver([item(1)], context)).to.equal('handled');
      expect(calls[0]?.options).to.deep.equal({
        readConcern: { level: 'snapshot' },
        writeConcern: { w: 'majority' },
      });
      expect(calls[0]?.ended).to.equal(true);
    });

    it("merges the application's transaction options over the defaults, key by key", async () => {
      const { client, calls } = fakeClient();
      const delivery = new TransactionalDelivery(
        { kind: 'record', handler: () => undefined },
        client,
        fakeStore().store,
        { writeConcern: { w: 2, wtimeoutMS: 5_000 }, maxCommitTimeMS: 1_000 },
      );
      await delivery.deliver([item(1)], context);
      expect(calls[0]?.options).to.deep.equal({
        readConcern: { level: 'snapshot' },
        writeConcern: { w: 2, wtimeoutMS: 5_000 },
        maxCommitTimeMS: 1_000,
      });
    });

    it('inserts the marks first, then calls the handler with the session, for one record or a batch', async () => {
      const { client } = fakeClient();
      const { store, inserted } = fakeStore();
      const sessions: unknown[] = [];
      const batches: string[][] = [];
      const record = new TransactionalDelivery(
        { kind: 'record', handler: (_event, { session }) => void sessions.push(session) },
        client,
        store,
        undefined,
      );
      await record.deliver([item(1)], context);
      expect(inserted[0]?.map((mark) => [mark.changeId, mark.offset, mark.outcome])).to.deep.equal([
        ['821', '1', 'handled'],
      ]);
      expect(sessions).to.have.length(1);
      const batch = new TransactionalDelivery(
        { kind: 'batch', handler: (items) => void batches.push(items.map((i) => i.changeId)) },
        client,
        store,
        undefined,
      );
      expect(batch.batches).to.equal(true);
      await batch.deliver([item(2), item(3)], context);
      expect(batches).to.deep.equal([['822', '823']]);
      expect(inserted[1]?.map((mark) => mark.changeId)).to.deep.equal(['822', '823']);
    });

    it('resolves duplicate without calling the handler when a mark exists (another delivery won)', async () => {
      const { client } = fakeClient();
      let calls = 0;
      const delivery = new TransactionalDelivery(
        {
          kind: 'record',
          handler: () => {
            calls++;
          },
        },
        client,
        fakeStore('already-seen').store,
        undefined,
      );
      expect(await delivery.deliver([item(1)], context)).to.equal('duplicate');
      expect(calls).to.equal(0);
    });

    it('starts no transaction work for a call whose signal fired before it began', async () => {
      const { client } = fakeClient();
      const { store, inserted } = fakeStore();
      const controller = new AbortController();
      controller.abort(new Error('stopping'));
      const delivery = new TransactionalDelivery(
        { kind: 'record', handler: () => undefined },
        client,
        store,
        undefined,
      );
      const error = await delivery.deliver([item(1)], { ...context, signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as Error).message).to.equal('stopping');
      expect(inserted).to.deep.equal([]);
    });
  });

  describe('IdempotentHandlerDelivery', () => {
    it('calls a record handler once per item, in order, and a batch handler once with all items', async () => {
      const seen: string[] = [];
      const perRecord = new IdempotentHandlerDelivery({
        kind: 'record',
        handler: (_event, { changeId, attempt }) => void seen.push(`${changeId}#${attempt}`),
      });
      expect(perRecord.writesSeenMark).to.equal(false);
      expect(perRecord.batches).to.equal(false);
      await perRecord.deliver([item(1), item(2)], { ...context, attempt: 2 });
      expect(seen).to.deep.equal(['821#2', '822#2']);

      const batches: number[] = [];
      const batch = new IdempotentHandlerDelivery({
        kind: 'batch',
        handler: (items) => void batches.push(items.length),
      });
      expect(batch.batches).to.equal(true);
      await batch.deliver([item(1), item(2), item(3)], context);
      expect(batches).to.deep.equal([3]);
    });

    it("throws the handler's error", async () => {
      const delivery = new IdempotentHandlerDelivery({
        kind: 'record',
        handler: () => {
          throw new Error('boom');
        },
      });
      const error = await delivery.deliver([item(1)], context).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as Error).message).to.equal('boom');
    });
  });
});
