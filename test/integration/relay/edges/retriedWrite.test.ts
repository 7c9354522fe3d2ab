/**
 * A checkpoint write can reach the server and apply, and its reply still be lost: a wtimeout or
 * maxTimeMS error after the primary applied it, a connection cut after the update, a driver retry the
 * server does not recognise. The checkpointer then retries the same write. A retry must be a replay:
 * the counts in the checkpoint are totals as of the position, never increments applied once per try
 * (with `$inc`, a CI run of the serial checkpointing test showed 141 published events at the position
 * of the 140th).
 */
import { expect } from 'chai';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { Checkpointer } from '../../../../src/checkpoint/checkpointer.js';
import { CheckpointStore, type CheckpointWrite } from '../../../../src/checkpoint/checkpointStore.js';
import { getServices } from '../../../support/services.js';
import { waitFor } from '../../../support/wait.js';
import { edgeContext, type EdgeContext } from './support/edgeContext.js';

describe('relay edges: a checkpoint write retried after its reply was lost', function () {
  let ctx: EdgeContext;
  afterEach(async () => ctx?.close());

  it('counts each event once, however often the write that covers it applied', async function () {
    ctx = await edgeContext('retried-write');
    const client = new MongoClient(getServices().mongoUri);
    await client.connect();
    try {
      const store = new CheckpointStore(client, 'mongo_kafka_relay', ctx.checkpointCollection, 'retried');
      await store.acquireLease({ owner: 'me', host: 'h', pid: 1 }, 60_000);
      await store.persistStart(
        'me',
        { token: { _data: '8200000001000000010A' }, clusterTime: null },
        {
          fingerprint: 'f',
          watch: ['a.b'],
        },
      );
      // Every second write applies on the server and then "loses its reply".
      let attempts = 0;
      const lossy = {
        write: async (owner: string, w: CheckpointWrite): Promise<Date> => {
          const writtenAt = await store.write(owner, w);
          attempts += 1;
          if (attempts % 2 === 1) throw new Error('reply lost after the write applied (test)');
          return writtenAt;
        },
      };
      const checkpointer = new Checkpointer(
        lossy,
        'me',
        { mode: 'serial', maxEvents: 1, maxDelayMs: 0, heartbeatMs: 60_000 },
        { fingerprint: 'f', watch: ['a.b'] },
        pino({ level: 'silent' }),
        { onFatal: (e) => expect.fail(e.message) },
      );
      const events = 5;
      for (let i = 1; i <= events; i += 1) {
        checkpointer.record({
          position: { token: { _data: `82000000020000000${i}0A` }, clusterTime: null },
          published: 1,
          filtered: i === 3 ? 1 : 0,
          deadLettered: 0,
        });
        await waitFor(async () => checkpointer.unpersistedEvents === 0 && !checkpointer.isWriting, {
          timeoutMs: 20_000,
          message: `event ${i} persisted`,
        });
      }
      await checkpointer.stop();
      expect(attempts, 'writes that applied on the server').to.equal(2 * events);
      const doc = await store.read();
      expect(doc?.token?._data).to.equal(`82000000020000000${events}0A`);
      expect(doc?.counts).to.deep.equal({ published: events, filtered: 1, deadLettered: 0 });
    } finally {
      await client.close();
    }
  });
});
