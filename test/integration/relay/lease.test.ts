import { expect } from 'chai';
import { collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelay, startRelayReady, parseMetrics } from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';

describe('relay: single owner through the checkpoint lease', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('a second relay with the same checkpoint waits, names the owner, and takes over within the lease TTL after the owner is SIGKILLed', async function () {
    ctx = await relayTestContext('lease-takeover');
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.items`,
      RELAY_LEASE_TTL_MS: '4000',
      RELAY_LEASE_RENEW_MS: '1000',
    });
    const first = await startRelayReady(env);
    const second = await startRelay(env);
    const waiting = await second.waitForLog(
      (l) => String(l.msg).includes('another relay holds the lease'),
      60_000,
    );
    const owner = (await ctx.readCheckpoint())?.lease?.owner as string;
    expect(waiting.leaseOwner).to.equal(owner);
    const m = parseMetrics(await second.metrics());
    expect(
      m.get(`mongo_kafka_relay_lease_owner{owner="${owner}",checkpoint_id="${ctx.checkpointId}"}`),
    ).to.equal(0);
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    await items.insertOne({ _id: 1 });
    await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === 1, {
      message: 'the owner published',
    });
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    await second.waitForLog((l) => l.msg === 'lease acquired', 30_000, 'the second relay to take the lease');
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).to.be.lessThan(4000 + 3000); // TTL plus one polling interval and process scheduling
    await items.insertOne({ _id: 2 });
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const got = await collector.waitForCount(2, 60_000);
      expect(got.map((r) => r.headers['document-key']).sort()).to.deep.equal([
        '{"_id":{"$numberInt":"1"}}',
        '{"_id":{"$numberInt":"2"}}',
      ]);
    } finally {
      await collector.stop();
    }
    const lease = (await ctx.readCheckpoint())?.lease;
    expect(lease?.owner).to.not.equal(owner);
    console.log(`      lease takeover after SIGKILL: ${takeoverMs} ms (TTL 4000 ms)`);
  });

  it('a relay whose lease was taken stops publishing, logs why, and exits 5 (fenced checkpoint writes)', async function () {
    ctx = await relayTestContext('lease-lost');
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.items`,
      RELAY_LEASE_TTL_MS: '6000',
      RELAY_LEASE_RENEW_MS: '1000',
    });
    const relay = await startRelayReady(env);
    const checkpoints = ctx.mongo
      .db('mongo_kafka_relay')
      .collection<{ _id: string; lease: object }>('checkpoints');
    // Another process takes the lease (as after a long stall of this one): the conditional writes must now fail.
    await checkpoints.updateOne(
      { _id: ctx.checkpointId },
      {
        $set: {
          lease: {
            owner: 'intruder/1/x',
            host: 'elsewhere',
            pid: 1,
            acquiredAt: new Date(),
            renewedAt: new Date(),
            expiresAt: new Date(Date.now() + 60_000),
          },
        },
      },
    );
    const code = await Promise.race([
      relay.exited,
      new Promise<number>((r) => setTimeout(() => r(-1), 20_000)),
    ]);
    expect(code).to.equal(5);
    const line = relay.logs.find((l) => String(l.msg).includes('lost the lease'));
    expect(line?.msg).to.contain('intruder/1/x');
    const cp = await ctx.readCheckpoint();
    expect(cp?.lease?.owner, 'the intruder keeps the lease').to.equal('intruder/1/x');
  });
});
