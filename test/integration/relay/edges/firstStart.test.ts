/**
 * Issue 10 item 2: the first start persists its starting position before it publishes anything, so a
 * crash (or a Kafka outage) right after the first start never moves the start to a later "now".
 */
import { expect } from 'chai';
import { collectTopic } from '../../../support/kafka.js';
import { killAllRelays, startRelay, startRelayReady } from '../../../support/relayProcess.js';
import { waitFor } from '../../../support/wait.js';
import { documentIds, edgeContext, type EdgeContext } from './support/edgeContext.js';

describe('relay edges: the first start', function () {
  let ctx: EdgeContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('a ready relay SIGKILLed before its first event, ten inserts, a restart: all ten reach Kafka', async function () {
    ctx = await edgeContext('first-start');
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.items`, RELAY_HEARTBEAT_MS: '600000' });
    const first = await startRelayReady(env);
    const persisted = await ctx.readCheckpoint();
    expect(persisted, 'a checkpoint exists as soon as the relay is ready').to.not.equal(null);
    await first.kill('SIGKILL');
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    for (let i = 1; i <= 10; i++) await items.insertOne({ _id: i });
    await startRelayReady(env);
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const got = await collector.waitForCount(10, 60_000).catch(() => collector.messages);
      expect(documentIds(got)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      await collector.stop();
    }
  });

  it('persists the starting position while Kafka is still unreachable at the first start', async function () {
    ctx = await edgeContext('first-start-kafka');
    // A broker address nobody listens on: the relay keeps trying to connect and must not lose its start.
    const relay = await startRelay(ctx.env({ RELAY_WATCH: `${ctx.db}.items`, KAFKA_BROKERS: '127.0.0.1:1' }));
    await waitFor(
      async () => {
        const cp = await ctx.readCheckpoint();
        return cp?.token ?? cp?.startAt;
      },
      {
        timeoutMs: 60_000,
        message: 'a persisted starting position while Kafka is down',
      },
    );
    expect(relay.child.exitCode, 'still waiting for Kafka').to.equal(null);
  });
});
