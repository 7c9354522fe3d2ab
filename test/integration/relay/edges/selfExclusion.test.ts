/**
 * Issue 10 item 4: the relay never relays its own checkpoint and lease writes, decided by the deployment
 * and namespace — not by RELAY_CHECKPOINT_URI being the same string as MONGODB_URI.
 */
import { expect } from 'chai';
import { collectTopic } from '../../../support/kafka.js';
import { killAllRelays, parseMetrics, startRelayReady } from '../../../support/relayProcess.js';
import { getServices } from '../../../support/services.js';
import { requireCapability } from '../../../support/mongo-capabilities.js';
import { edgeContext, type EdgeContext } from './support/edgeContext.js';

describe('relay edges: self-exclusion', function () {
  let ctx: EdgeContext;
  before(function () {
    requireCapability(this, 'deploymentWatch');
  });
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('watching "*" with the checkpoint store on the same deployment under another URI string relays none of its own writes', async function () {
    ctx = await edgeContext('self-exclusion');
    const uri = new URL(getServices().mongoUri);
    const otherString = `mongodb://localhost:${uri.port || 27017}/?appName=relay-checkpoint-store`;
    const relay = await startRelayReady(
      ctx.env({
        RELAY_WATCH: '*',
        RELAY_CHECKPOINT_URI: otherString,
        RELAY_CHECKPOINT_COLLECTION: ctx.checkpointCollection,
        RELAY_HEARTBEAT_MS: '500',
      }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    for (let i = 1; i <= 3; i++) await items.insertOne({ _id: i });
    const collector = await collectTopic(ctx.topic('items'));
    try {
      await collector.waitForCount(3, 60_000);
      // Checkpoint writes, heartbeats (every 500 ms) and lease renewals go on meanwhile.
      await new Promise((r) => setTimeout(r, 3000));
      const own = [...parseMetrics(await relay.metrics())].filter(
        ([k]) => k.startsWith('mongo_kafka_relay_events_total{') && k.includes('ns="mongo_kafka_relay.'),
      );
      expect(own, 'events of the relay database that were published').to.deep.equal([]);
    } finally {
      await collector.stop();
    }
  });
});
