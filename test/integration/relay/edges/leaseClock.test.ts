/**
 * Issue 10 item 6: the lease runs on the server's clock. A relay whose wall clock is far ahead must not
 * take the live lease of another relay; only when the owner is gone does it take over.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { killAllRelays, startRelay, startRelayReady } from '../../../support/relayProcess.js';
import { relayTestContext, type RelayTestContext } from '../../../support/relayFixture.js';

const SKEW_PRELOAD = pathToFileURL(path.join(import.meta.dirname, 'support', 'skewClock.mjs')).href;

describe('relay edges: the lease follows the server clock', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('a second relay whose clock runs 10 minutes ahead waits for the live owner, and takes over only after the owner is gone', async function () {
    ctx = await relayTestContext('lease-clock');
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.items`,
      RELAY_LEASE_TTL_MS: '4000',
      RELAY_LEASE_RENEW_MS: '1000',
    });
    const owner = await startRelayReady(env);
    const ownerId = (await ctx.readCheckpoint())?.lease?.owner as string;
    const ahead = await startRelay({
      ...env,
      NODE_OPTIONS: `--import=${SKEW_PRELOAD}`,
      EDGE_TEST_CLOCK_SKEW_MS: String(10 * 60_000),
    });
    await ahead.waitForLog((l) => l.msg === 'configuration loaded', 60_000);
    // Three lease lifetimes with a live owner: the skewed relay must keep waiting all along.
    await new Promise((r) => setTimeout(r, 12_000));
    expect(
      ahead.logs.some((l) => l.msg === 'lease acquired'),
      'the relay with the fast clock took a live lease',
    ).to.equal(false);
    expect(owner.child.exitCode, 'the owner is still running').to.equal(null);
    expect((await ctx.readCheckpoint())?.lease?.owner).to.equal(ownerId);
    await owner.kill('SIGKILL');
    await ahead.waitForLog((l) => l.msg === 'lease acquired', 30_000, 'the takeover after the owner died');
  });

  it('a relay whose clock runs 10 minutes behind keeps its lease against a relay with a correct clock', async function () {
    ctx = await relayTestContext('lease-clock-behind');
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.items`,
      RELAY_LEASE_TTL_MS: '4000',
      RELAY_LEASE_RENEW_MS: '1000',
    });
    const behind = await startRelayReady({
      ...env,
      NODE_OPTIONS: `--import=${SKEW_PRELOAD}`,
      EDGE_TEST_CLOCK_SKEW_MS: String(-10 * 60_000),
    });
    const second = await startRelay(env);
    await second.waitForLog((l) => l.msg === 'configuration loaded', 60_000);
    await new Promise((r) => setTimeout(r, 12_000));
    expect(
      second.logs.some((l) => l.msg === 'lease acquired'),
      'took the lease of a live owner',
    ).to.equal(false);
    expect(behind.child.exitCode, 'the owner with the slow clock is still running').to.equal(null);
  });
});
