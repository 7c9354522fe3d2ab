import { expect } from 'chai';
import { collectTopic, type Collector } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, startRelay } from '../../support/relayProcess.js';
import { Workload, awaitDelivery, formatReport } from '../../support/workload.js';

const COLLS = ['orders', 'customers'];

async function collectAll(ctx: RelayTestContext): Promise<Collector[]> {
  return Promise.all(COLLS.map((c) => collectTopic(ctx.topic(c))));
}

describe('relay: crashes and restarts', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('loses nothing when killed with SIGKILL at several points mid-stream; duplicates only repeat published change IDs', async function () {
    ctx = await relayTestContext('sigkill');
    const env = ctx.env({ RELAY_WATCH: COLLS.map((c) => `${ctx.db}.${c}`).join(',') });
    let relay = await startRelayReady(env);
    let kills = 0;
    // The writer keeps writing until the last kill, so every kill lands mid-stream.
    const workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: COLLS,
      documents: 40,
      changes: 100_000,
      pauseMs: 1,
      stop: () => kills >= 4,
    });
    const done = workload.run();
    while (kills < 4) {
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 900));
      await relay.kill('SIGKILL');
      kills += 1;
      relay = await startRelayReady(env);
    }
    const log = await done;
    const collectors = await collectAll(ctx);
    try {
      const report = await awaitDelivery(log, () => collectors.flatMap((c) => c.messages));
      expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
      console.log(`      ${formatReport('relay-kill', report, { crashes: kills })}`);
      expect(kills).to.equal(4);
      expect(report.changes).to.be.greaterThan(500);
      expect(report.orderViolations).to.equal(0);
      expect(report.conflictingDuplicates).to.equal(0);
      expect(report.unexpected).to.equal(0);
    } finally {
      await Promise.all(collectors.map((c) => c.stop()));
    }
  });

  it('publishes no duplicate at all across a graceful stop (SIGTERM) and restart', async function () {
    ctx = await relayTestContext('graceful');
    const env = ctx.env({ RELAY_WATCH: COLLS.map((c) => `${ctx.db}.${c}`).join(',') });
    let relay = await startRelayReady(env);
    let stops = 0;
    const workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: COLLS,
      documents: 40,
      changes: 100_000,
      pauseMs: 1,
      seed: 7,
      stop: () => stops >= 3,
    });
    const done = workload.run();
    while (stops < 3) {
      await new Promise((r) => setTimeout(r, 800));
      const code = await relay.kill('SIGTERM');
      expect(code, 'graceful stop exit code').to.equal(0);
      expect(relay.logs.some((l) => l.msg.startsWith('stopped: every read event acknowledged'))).to.equal(
        true,
      );
      stops += 1;
      relay = await startRelayReady(env);
    }
    const log = await done;
    const collectors = await collectAll(ctx);
    try {
      const report = await awaitDelivery(log, () => collectors.flatMap((c) => c.messages));
      expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
      console.log(`      ${formatReport('relay-sigterm', report, { stops })}`);
      expect(report.duplicates).to.equal(0);
      expect(report.orderViolations).to.equal(0);
    } finally {
      await Promise.all(collectors.map((c) => c.stop()));
    }
  });

  it('exits with code 0 on SIGTERM when idle, persisting the last position', async function () {
    ctx = await relayTestContext('idle-stop');
    const relay = await startRelay(ctx.env());
    await relay.waitForLog((l) => l.msg === 'change stream open', 60_000);
    expect(await relay.kill('SIGTERM')).to.equal(0);
    const cp = await ctx.readCheckpoint();
    expect(cp?.lease ?? null, 'lease released').to.equal(null);
  });
});
