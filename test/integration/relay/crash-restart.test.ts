import { expect } from 'chai';
import { collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, startRelay, type RelayProcess } from '../../support/relayProcess.js';
import { Workload, awaitDelivery, formatReport, type DeliveryReport } from '../../support/workload.js';

const COLLS = ['orders', 'customers'];

/**
 * Writes changes while the relay is stopped `times` times with `signal` (and restarted), then reads
 * every topic back. The writer runs until the last stop, so every stop lands mid-stream.
 */
async function interruptMidStream(
  ctx: RelayTestContext,
  signal: 'SIGKILL' | 'SIGTERM',
  times: number,
  seed: number,
  afterStop: (relay: RelayProcess, code: number) => void = () => {},
): Promise<DeliveryReport> {
  const env = ctx.env({ RELAY_WATCH: COLLS.map((c) => `${ctx.db}.${c}`).join(',') });
  let relay = await startRelayReady(env);
  let stops = 0;
  const workload = new Workload(ctx.mongo, {
    db: ctx.db,
    collections: COLLS,
    documents: 40,
    changes: 100_000,
    pauseMs: 1,
    seed,
    stop: () => stops >= times,
  });
  const done = workload.run();
  while (stops < times) {
    await new Promise((r) => setTimeout(r, 700 + Math.random() * 900));
    afterStop(relay, await relay.kill(signal));
    stops += 1;
    relay = await startRelayReady(env);
  }
  const log = await done;
  const collectors = await Promise.all(COLLS.map((c) => collectTopic(ctx.topic(c))));
  try {
    const report = await awaitDelivery(log, () => collectors.flatMap((c) => c.messages));
    console.log(
      `      ${formatReport(signal === 'SIGKILL' ? 'relay-kill' : 'relay-sigterm', report, { stops })}`,
    );
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.orderViolations).to.equal(0);
    expect(report.unexpected).to.equal(0);
    return report;
  } finally {
    await Promise.all(collectors.map((c) => c.stop()));
  }
}

describe('relay: crashes and restarts', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('loses nothing when killed with SIGKILL at several points mid-stream; duplicates only repeat published change IDs', async function () {
    ctx = await relayTestContext('sigkill');
    const report = await interruptMidStream(ctx, 'SIGKILL', 4, 42);
    expect(report.changes).to.be.greaterThan(500);
    expect(report.conflictingDuplicates).to.equal(0);
  });

  it('publishes no duplicate at all across a graceful stop (SIGTERM) and restart', async function () {
    ctx = await relayTestContext('graceful');
    const report = await interruptMidStream(ctx, 'SIGTERM', 3, 7, (relay, code) => {
      expect(code, 'graceful stop exit code').to.equal(0);
      expect(relay.logs.some((l) => l.msg.startsWith('stopped: every read event acknowledged'))).to.equal(
        true,
      );
    });
    expect(report.duplicates).to.equal(0);
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
