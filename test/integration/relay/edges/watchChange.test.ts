/**
 * Issue 10 item 1: a change of the watch configuration (targets, RELAY_PIPELINE, RELAY_OPERATION_TYPES)
 * either continues from the previous position or refuses with a message that says what to do; it never
 * starts at "now" by accident.
 */
import { expect } from 'chai';
import { loadConfig } from '../../../../src/config/load.js';
import { collectTopic } from '../../../support/kafka.js';
import { killAllRelays, startRelay, startRelayReady } from '../../../support/relayProcess.js';
import { waitFor } from '../../../support/wait.js';
import { documentIds, edgeContext, readyOrExit, type EdgeContext } from './support/edgeContext.js';

const ADDED_MATCH = JSON.stringify([{ $match: { operationType: { $in: ['insert', 'update', 'replace'] } } }]);

describe('relay edges: changing the watch configuration', function () {
  let ctx: EdgeContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  async function insert(ids: number[]): Promise<void> {
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    for (const _id of ids) await items.insertOne({ _id });
  }

  it('a restart with one added $match stage and no RELAY_CHECKPOINT_ID never loses the five inserts made while it was down', async function () {
    ctx = await edgeContext('watch-change');
    const before = ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.items` });
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const first = await startRelayReady(before);
      await insert([0]);
      await collector.waitForCount(1, 60_000);
      expect(await first.kill('SIGTERM')).to.equal(0);
      await insert([1, 2, 3, 4, 5]);

      const after = { ...before, RELAY_PIPELINE: ADDED_MATCH };
      const second = await startRelay(after);
      const outcome = await readyOrExit(second);
      if (!outcome.ready) {
        // Refusing is allowed, if the message says what to do — and doing it then loses nothing.
        expect(outcome.code, 'refused as a configuration error').to.equal(3);
        const refusal = second.logs.find((l) => l.level >= 50)?.msg ?? second.stderr.join('');
        expect(refusal).to.contain('RELAY_ALLOW_WATCH_CHANGE=true');
        expect(refusal).to.contain('token clear');
        await startRelayReady({ ...after, RELAY_ALLOW_WATCH_CHANGE: 'true' });
      }
      const got = await collector.waitForCount(6, 60_000).catch(() => collector.messages);
      expect(documentIds(got), 'every insert, also those made while the relay was down').to.deep.equal([
        0, 1, 2, 3, 4, 5,
      ]);
    } finally {
      await collector.stop();
    }
  });

  it('keeps one checkpoint ID across watch changes: the default ID does not depend on the watch configuration', async function () {
    ctx = await edgeContext('watch-id');
    const first = await startRelayReady(ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.items` }));
    const idLine = first.logs.find((l) => l.msg === 'configuration loaded');
    await first.kill('SIGTERM');
    const second = await startRelayReady(
      ctx.envWithoutCheckpointId({
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_ALLOW_WATCH_CHANGE: 'true',
        RELAY_PIPELINE: ADDED_MATCH,
      }),
    );
    const idLine2 = second.logs.find((l) => l.msg === 'configuration loaded');
    expect(idLine2?.checkpointId).to.equal(idLine?.checkpointId);
    const docs = await ctx.checkpointDocs();
    expect(docs.map((d) => d._id)).to.deep.equal([idLine?.checkpointId]);
  });

  it('refuses at once, without waiting for the lease, when a relay with another watch configuration owns the default checkpoint', async function () {
    ctx = await edgeContext('watch-split');
    await startRelayReady(ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.orders` }));
    const other = await startRelay(ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.customers` }));
    const outcome = await readyOrExit(other, 30_000);
    expect(outcome).to.deep.equal({ ready: false, code: 3 });
    const message = other.logs.find((l) => l.level >= 50)?.msg ?? '';
    expect(message).to.contain('RELAY_CHECKPOINT_ID');
    expect(message).to.contain(`${ctx.db}.orders`);
  });

  describe('checkpoints an earlier version kept under a derived ID', function () {
    /** The checkpoint ID earlier versions derived from the watch configuration. */
    const legacyId = (env: Record<string, string>) => `relay-${loadConfig({ env }).derived.fingerprint}`;

    it('adopts the derived-ID checkpoint of the same watch configuration: the changes made during the upgrade arrive', async function () {
      ctx = await edgeContext('legacy-adopt');
      const env = ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.items` });
      const old = legacyId(env);
      const collector = await collectTopic(ctx.topic('items'));
      try {
        // The earlier version, as far as the checkpoint is concerned: the same relay under the derived ID.
        const earlier = await startRelayReady({ ...env, RELAY_CHECKPOINT_ID: old });
        await insert([0]);
        await collector.waitForCount(1, 60_000);
        await waitFor(async () => (await ctx.checkpointDoc(old))?.counts?.published === 1);
        expect(await earlier.kill('SIGTERM')).to.equal(0);
        await insert([1, 2, 3, 4, 5]);
        const upgraded = await startRelayReady(env);
        const got = await collector.waitForCount(6, 60_000).catch(() => collector.messages);
        expect(documentIds(got)).to.deep.equal([0, 1, 2, 3, 4, 5]);
        const adopted = upgraded.logs.find((l) => String(l.msg).includes('adopted'));
        expect(adopted?.adoptedFrom, 'the adoption is logged').to.equal(old);
        expect((await ctx.checkpointDoc(old))?.migratedTo).to.equal('default');
      } finally {
        await collector.stop();
      }
    });

    it('refuses a derived-ID checkpoint of another watch configuration and names the exact settings to continue or keep it', async function () {
      ctx = await edgeContext('legacy-refuse');
      const env = ctx.envWithoutCheckpointId({ RELAY_WATCH: `${ctx.db}.items` });
      const old = legacyId(env);
      const earlier = await startRelayReady({ ...env, RELAY_CHECKPOINT_ID: old });
      await insert([0]);
      await waitFor(async () => (await ctx.checkpointDoc(old))?.counts?.published === 1);
      await earlier.kill('SIGTERM');
      const changed = await startRelay({ ...env, RELAY_PIPELINE: ADDED_MATCH });
      expect(await readyOrExit(changed, 30_000)).to.deep.equal({ ready: false, code: 3 });
      const message = changed.logs.find((l) => l.level >= 50)?.msg ?? '';
      expect(message).to.contain(old);
      expect(message).to.contain('RELAY_ALLOW_WATCH_CHANGE=true');
      expect(message).to.contain(`RELAY_CHECKPOINT_ID=${old}`);
      expect(await ctx.checkpointDoc('default'), 'nothing written under the default ID').to.equal(null);
    });
  });
});
