/**
 * Issue 10 item 9: SIGTERM ends the relay with code 0 within RELAY_SHUTDOWN_TIMEOUT_MS, keeping the last
 * safe checkpoint — also while MongoDB is unreachable and while a produce request is stuck.
 */
import { expect } from 'chai';
import type { KafkaService } from '../../../support/services.js';
import { getServices, startDedicatedKafka } from '../../../support/services.js';
import { killAllRelays, startRelayReady } from '../../../support/relayProcess.js';
import { startTcpProxy, type TcpProxy } from '../../../support/tcpProxy.js';
import { waitFor } from '../../../support/wait.js';
import { relayTestContext, type RelayTestContext } from '../../../support/relayFixture.js';

describe('relay edges: graceful stop at the edges', function () {
  let ctx: RelayTestContext;
  let proxy: TcpProxy | undefined;
  let kafka: KafkaService | undefined;
  afterEach(async () => {
    if (kafka) process.kill(kafka.pid, 'SIGCONT');
    await killAllRelays();
    await proxy?.close();
    proxy = undefined;
    await kafka?.stop();
    kafka = undefined;
    await ctx?.close();
  });

  it('exits 0 within the shutdown timeout on SIGTERM while MongoDB is unreachable', async function () {
    ctx = await relayTestContext('stop-mongo-down');
    const target = new URL(getServices().mongoUri);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 27017));
    const relay = await startRelayReady(
      ctx.env({
        MONGODB_URI: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true&serverSelectionTimeoutMS=2000`,
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_SHUTDOWN_TIMEOUT_MS: '4000',
      }),
    );
    proxy.cut();
    await relay.waitForLog((l) => l.level === 40, 30_000, 'the relay to notice that MongoDB is gone');
    const t0 = performance.now();
    const code = await relay.kill('SIGTERM');
    console.log(
      `      SIGTERM with MongoDB unreachable: exit ${code} after ${Math.round(performance.now() - t0)} ms (timeout 4000 ms)`,
    );
    expect(code, relay.stdout.slice(-5).join('\n')).to.equal(0);
    expect(relay.logs.some((l) => String(l.msg).startsWith('stopped'))).to.equal(true);
  });

  it('exits 0 within the shutdown timeout on SIGTERM while a produce request is stuck, keeping the last acknowledged checkpoint', async function () {
    ctx = await relayTestContext('stop-kafka-stuck');
    kafka = await startDedicatedKafka();
    const relay = await startRelayReady(
      ctx.env({
        KAFKA_BROKERS: kafka.brokers,
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_SHUTDOWN_TIMEOUT_MS: '4000',
      }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    await items.insertOne({ _id: 1 });
    await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === 1, {
      timeoutMs: 30_000,
      message: 'the first event acknowledged and checkpointed',
    });
    const acknowledged = (await ctx.readCheckpoint())?.token?._data as string;
    // A broker that accepts the request and never answers.
    process.kill(kafka.pid, 'SIGSTOP');
    await items.insertOne({ _id: 2 });
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = performance.now();
    const code = await relay.kill('SIGTERM');
    console.log(
      `      SIGTERM with a produce request stuck: exit ${code} after ${Math.round(performance.now() - t0)} ms (timeout 4000 ms)`,
    );
    expect(code, relay.stdout.slice(-5).join('\n')).to.equal(0);
    const cp = await ctx.readCheckpoint();
    expect(cp?.token?._data, 'the checkpoint stays at the last acknowledged event').to.equal(acknowledged);
    expect(cp?.lease ?? null, 'lease released').to.equal(null);
  });
});
