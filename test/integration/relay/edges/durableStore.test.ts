/**
 * Issue 10 item 7: checkpoint and lease operations are durable (write concern majority with a timeout,
 * majority reads) and bounded in time, so a hung checkpoint store turns /readyz red instead of stalling
 * publishing behind a green probe.
 */
import { expect } from 'chai';
import { MongoClient, type CommandStartedEvent, type Document } from 'mongodb';
import { CheckpointStore } from '../../../../src/checkpoint/checkpointStore.js';
import { killAllRelays, startRelayReady } from '../../../support/relayProcess.js';
import { getServices } from '../../../support/services.js';
import { waitFor } from '../../../support/wait.js';
import { edgeContext, type EdgeContext } from './support/edgeContext.js';
import { startFreezableProxy, type FreezableProxy } from './support/freezableProxy.js';

describe('relay edges: durable, bounded checkpoint and lease operations', function () {
  let ctx: EdgeContext;
  let proxy: FreezableProxy | undefined;
  afterEach(async () => {
    await killAllRelays();
    proxy?.thaw();
    await proxy?.close();
    proxy = undefined;
    await ctx?.close();
  });

  it('every checkpoint and lease write asks for w:majority with a wtimeout and maxTimeMS; every read for majority', async function () {
    ctx = await edgeContext('durable-ops');
    const client = new MongoClient(getServices().mongoUri, { monitorCommands: true });
    const sent: CommandStartedEvent[] = [];
    client.on('commandStarted', (e) => sent.push(e));
    try {
      await client.connect();
      const store = new CheckpointStore(client, 'mongo_kafka_relay', ctx.checkpointCollection, 'durable');
      await store.acquireLease({ owner: 'me', host: 'h', pid: 1 }, 10_000);
      await store.renewLease('me', 10_000);
      await store.write('me', {
        token: { _data: '8200000001000000010A' },
        clusterTime: null,
        published: 1,
        filtered: 0,
        deadLettered: 0,
        fingerprint: 'f',
        watch: ['a.b'],
      });
      await store.read();
      await store.releaseLease('me');
      const ofStore = sent.filter((e) => (e.command as Document)[e.commandName] === ctx.checkpointCollection);
      const writes = ofStore.filter((e) =>
        ['update', 'findAndModify', 'insert', 'delete'].includes(e.commandName),
      );
      const reads = ofStore.filter((e) => ['find', 'aggregate', 'count'].includes(e.commandName));
      expect(writes.length, 'writes seen').to.be.greaterThan(3);
      expect(reads.length, 'reads seen').to.be.greaterThan(0);
      for (const e of writes) {
        const cmd = e.command as Document;
        expect(cmd.writeConcern, `${e.commandName} write concern`).to.deep.include({ w: 'majority' });
        expect(cmd.writeConcern.wtimeout, `${e.commandName} wtimeout`).to.be.a('number').greaterThan(0);
        expect(cmd.maxTimeMS, `${e.commandName} maxTimeMS`).to.be.a('number').greaterThan(0);
      }
      for (const e of reads) {
        const cmd = e.command as Document;
        expect(cmd.readConcern, `${e.commandName} read concern`).to.deep.include({ level: 'majority' });
        expect(cmd.maxTimeMS, `${e.commandName} maxTimeMS`).to.be.a('number').greaterThan(0);
      }
    } finally {
      await client.close();
    }
  });

  it('a checkpoint store that stops answering turns /readyz 503 within the operation timeout, and the relay recovers when it answers again', async function () {
    ctx = await edgeContext('durable-hang');
    const target = new URL(getServices().mongoUri);
    proxy = await startFreezableProxy(target.hostname, Number(target.port || 27017));
    const relay = await startRelayReady(
      ctx.env({
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_CHECKPOINT_COLLECTION: ctx.checkpointCollection,
        RELAY_CHECKPOINT_URI: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        // A long lease: what turns the probe red must be the hung write itself, not the lease running out.
        RELAY_LEASE_TTL_MS: '120000',
        RELAY_LEASE_RENEW_MS: '5000',
        RELAY_CHECKPOINT_TIMEOUT_MS: '1000',
      }),
    );
    const readyz = async (): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`);
      return { status: res.status, body: await res.text() };
    };
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    await items.insertOne({ _id: 1 });
    await waitFor(async () => (await ctx.checkpointDoc(ctx.checkpointId))?.counts?.published === 1, {
      timeoutMs: 30_000,
      message: 'the first event checkpointed',
    });
    proxy.freeze();
    await items.insertOne({ _id: 2 });
    const red = await waitFor(async () => ((await readyz()).status === 503 ? readyz() : null), {
      timeoutMs: 20_000,
      message: '/readyz to turn 503 while the checkpoint store hangs',
    });
    expect(red.body).to.contain('checkpointStore');
    proxy.thaw();
    await waitFor(async () => (await ctx.checkpointDoc(ctx.checkpointId))?.counts?.published === 2, {
      timeoutMs: 60_000,
      message: 'the second event checkpointed after the store answers again',
    });
    await waitFor(async () => (await readyz()).status === 200, {
      timeoutMs: 30_000,
      message: '/readyz 200 again',
    });
    expect(relay.child.exitCode, 'the relay kept running').to.equal(null);
  });
});
