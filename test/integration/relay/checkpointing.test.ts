import { expect } from 'chai';
import { collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, parseMetrics, sumMetric } from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';

describe('relay: checkpointing', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('strict mode persists the token of every published event (a write per event, the last token equals the last record key)', async function () {
    ctx = await relayTestContext('strict');
    const relay = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.items`, RELAY_CHECKPOINT_MODE: 'strict' }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    for (let i = 0; i < 50; i++) await items.insertOne({ _id: i });
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const records = await collector.waitForCount(50, 60_000);
      const lastKey = [...records].sort((a, b) => Number(a.offset) - Number(b.offset)).map((r) => r.key);
      const newest = records.reduce((a, b) => ((a.key ?? '') > (b.key ?? '') ? a : b));
      await waitFor(async () => (await ctx.readCheckpoint())?.token?._data === newest.key, {
        message: 'checkpoint at the last event',
      });
      const metrics = parseMetrics(await relay.metrics());
      expect(sumMetric(metrics, 'mongo_kafka_relay_events_total')).to.equal(50);
      expect(sumMetric(metrics, 'mongo_kafka_relay_checkpoint_writes_total')).to.be.at.least(50);
      expect(lastKey.length).to.equal(50);
      const cp = await ctx.readCheckpoint();
      expect(cp?.counts?.published).to.equal(50);
    } finally {
      await collector.stop();
    }
  });

  it('batched mode coalesces writes yet reaches the last event within the configured delay', async function () {
    ctx = await relayTestContext('batched');
    const relay = await startRelayReady(
      ctx.env({
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_CHECKPOINT_MODE: 'batched',
        RELAY_CHECKPOINT_MAX_EVENTS: '100',
        RELAY_CHECKPOINT_MAX_DELAY_MS: '300',
      }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    await items.insertMany(Array.from({ length: 300 }, (_, i) => ({ _id: i })));
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const records = await collector.waitForCount(300, 60_000);
      const newest = records.reduce((a, b) => ((a.key ?? '') > (b.key ?? '') ? a : b));
      await waitFor(async () => (await ctx.readCheckpoint())?.token?._data === newest.key, {
        timeoutMs: 5000,
        message: 'checkpoint at the last event',
      });
      const metrics = parseMetrics(await relay.metrics());
      const writes = sumMetric(metrics, 'mongo_kafka_relay_checkpoint_writes_total');
      expect(writes).to.be.greaterThan(0);
      expect(writes).to.be.lessThan(300);
      expect((await ctx.readCheckpoint())?.counts?.published).to.equal(300);
    } finally {
      await collector.stop();
    }
  });

  it('advances the checkpoint over events the relay filters out (RELAY_OPERATION_TYPES)', async function () {
    ctx = await relayTestContext('filtered');
    const relay = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.items`, RELAY_OPERATION_TYPES: 'insert' }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number; v?: number }>('items');
    const watch = items.watch();
    await watch.tryNext();
    await items.insertOne({ _id: 1 });
    for (let v = 0; v < 5; v++) await items.updateOne({ _id: 1 }, { $set: { v } });
    const truth = [];
    while (truth.length < 6) truth.push(await watch.next());
    await watch.close();
    const lastUpdate = truth[5]!._id as { _data: string };
    await waitFor(async () => (await ctx.readCheckpoint())?.token?._data === lastUpdate._data, {
      timeoutMs: 20_000,
      message: 'checkpoint at the last (filtered) update',
    });
    const cp = await ctx.readCheckpoint();
    expect(cp?.counts).to.deep.include({ published: 1, filtered: 5 });
    const metrics = parseMetrics(await relay.metrics());
    expect(sumMetric(metrics, 'mongo_kafka_relay_filtered_events_total')).to.equal(5);
  });

  it('advances the checkpoint on a quiet stream from the post-batch resume token (heartbeat)', async function () {
    ctx = await relayTestContext('heartbeat');
    // A pipeline that matches nothing: the stream stays quiet while other collections change.
    await startRelayReady(
      ctx.env({
        RELAY_WATCH: `${ctx.db}.*`,
        RELAY_PIPELINE: '[{"$match":{"ns.coll":"never"}}]',
        RELAY_HEARTBEAT_MS: '500',
      }),
    );
    const first = await waitFor(
      async () => (await ctx.readCheckpoint())?.token?._data as string | undefined,
      {
        timeoutMs: 20_000,
        message: 'a first heartbeat checkpoint',
      },
    );
    const noise = ctx.mongo.db(ctx.db).collection<{ _id: number }>('noise');
    for (let i = 0; i < 5; i++) await noise.insertOne({ _id: i });
    const later = await waitFor(
      async () => {
        const t = (await ctx.readCheckpoint())?.token?._data as string | undefined;
        return t !== undefined && t > first && t;
      },
      { timeoutMs: 20_000, message: 'the heartbeat checkpoint to move past the first' },
    );
    expect(later > first).to.equal(true);
    expect((await ctx.readCheckpoint())?.counts?.published ?? 0).to.equal(0);
  });

  it('refuses to start against a checkpoint written with another watch configuration, unless allowed', async function () {
    ctx = await relayTestContext('fingerprint');
    const first = await startRelayReady(ctx.env({ RELAY_WATCH: `${ctx.db}.a` }));
    await ctx.mongo.db(ctx.db).collection<{ _id: number }>('a').insertOne({ _id: 1 });
    await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === 1, {
      timeoutMs: 20_000,
      message: 'first checkpoint',
    });
    expect(await first.kill('SIGTERM')).to.equal(0);
    const { runCli } = await import('../../support/relayProcess.js');
    const refused = await runCli(['start'], ctx.env({ RELAY_WATCH: `${ctx.db}.b` }));
    expect(refused.code).to.equal(3);
    expect(refused.stderr + refused.stdout).to.contain('another watch configuration');
    const allowed = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.b`, RELAY_ALLOW_WATCH_CHANGE: 'true' }),
    );
    expect(allowed.logs.some((l) => l.msg.includes('RELAY_ALLOW_WATCH_CHANGE=true'))).to.equal(true);
  });
});
