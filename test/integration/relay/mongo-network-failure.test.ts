import { expect } from 'chai';
import { collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcpProxy.js';
import { Workload, awaitDelivery, formatReport } from '../../support/workload.js';

describe('relay: MongoDB network failure (connections cut mid-stream through a TCP proxy)', function () {
  let ctx: RelayTestContext;
  let proxy: TcpProxy;
  after(async () => {
    await killAllRelays();
    await proxy?.close();
    await ctx?.close();
  });

  it('resumes from its last position by itself (the driver or the relay reopens): nothing lost, no exit', async () => {
    ctx = await relayTestContext('mongo-net');
    const target = new URL(getServices().mongoUri.replace(/^mongodb:/, 'http:'));
    proxy = await startTcpProxy(target.hostname, Number(target.port || 27017));
    // directConnection: the relay must talk through the proxy, not to the members hello advertises.
    const viaProxy = `mongodb://127.0.0.1:${proxy.port}/?directConnection=true&serverSelectionTimeoutMS=2000&heartbeatFrequencyMS=500`;
    const relay = await startRelayReady(
      ctx.env({
        MONGODB_URI: viaProxy,
        RELAY_WATCH: `${ctx.db}.items`,
        RELAY_LEASE_TTL_MS: '15000',
        RELAY_LEASE_RENEW_MS: '1000',
      }),
    );
    let cuts = 0;
    const workload: Workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: ['items'],
      documents: 20,
      changes: 20_000,
      pauseMs: 3,
      stop: (): boolean => cuts >= 2 && workload.log.length >= 800,
    });
    const done = workload.run();
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1500));
      proxy.cut();
      cuts += 1;
      await new Promise((r) => setTimeout(r, 3000));
      proxy.restore();
    }
    const log = await done;
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const report = await awaitDelivery(log, () => collector.messages);
      console.log(`      ${formatReport('mongo-network-cut', report, { cuts })}`);
      expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
      expect(report.orderViolations).to.equal(0);
      expect(relay.child.exitCode, 'the relay kept running').to.equal(null);
      // The cut did hit the relay: some MongoDB operation of it failed and was retried.
      const retried = relay.logs.filter(
        (l) =>
          l.level === 40 && /checkpoint write failed|lease renewal failed|change stream failed/.test(l.msg),
      );
      expect(retried.length, 'warnings about retried MongoDB operations').to.be.greaterThan(0);
    } finally {
      await collector.stop();
    }
  });
});
