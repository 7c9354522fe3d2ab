/**
 * Oplog headroom against the test MongoDB: the relay reads the oplog window from local.oplog.rs and
 * exports it with the checkpoint's distance to the oldest entry; `check-config` reports the window.
 */
import { expect } from 'chai';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, parseMetrics, runCli, startRelayReady } from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';

const WINDOW = 'mongo_kafka_relay_oplog_window_seconds';
const HEADROOM = 'mongo_kafka_relay_oplog_headroom_seconds';

describe('oplog window and headroom', function () {
  let ctx: RelayTestContext;
  before(async () => {
    ctx = await relayTestContext('oplog');
  });
  afterEach(killAllRelays);
  after(async () => ctx?.close());

  it('exports the window and the headroom, which stays within the window while the relay keeps up', async () => {
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
    await items.insertOne({ _id: 0 }); // the oplog has at least one entry
    const relay = await startRelayReady(ctx.env({ METRICS_OPLOG_INTERVAL_MS: '300' }));
    for (let i = 1; i <= 5; i++) await items.insertOne({ _id: i });
    const m = await waitFor(
      async () => {
        const metrics = parseMetrics(await relay.metrics());
        // Both gauges are exported from the first scrape as NaN until measured (issue 20 item 2).
        const measured = Number.isFinite(metrics.get(WINDOW)) && Number.isFinite(metrics.get(HEADROOM));
        return measured && metrics.get('mongo_kafka_relay_oplog_window_known') === 1 && metrics;
      },
      { timeoutMs: 30_000, message: 'the oplog window and headroom gauges measured (not NaN)' },
    );
    const window = m.get(WINDOW) ?? NaN;
    const headroom = m.get(HEADROOM) ?? NaN;
    expect(window).to.be.at.least(0);
    // The checkpoint is at or after the oldest entry, and at most a few seconds past the newest one
    // read (its heartbeat position follows the clock).
    expect(headroom).to.be.at.least(0);
    expect(headroom).to.be.at.most(window + 5);
    expect(relay.logs.some((l) => String(l.msg).startsWith('oplog window unknown'))).to.equal(false);
  });

  it('check-config reports the oplog window', async () => {
    const { code, stdout } = await runCli(['check-config'], ctx.env());
    expect(code, stdout).to.equal(0);
    expect(stdout).to.match(/^ok {3}oplog window \(local\.oplog\.rs\): \d+ (s|min|h)\b/m);
  });
});
