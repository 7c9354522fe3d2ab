import { expect } from 'chai';
import type { Timestamp } from 'mongodb';
import { CHECKPOINT_MODES } from '../../../src/config/schema.js';
import { clusterTimeOfToken } from '../../../src/source/resumeToken.js';
import { collectTopic } from '../../support/kafka.js';
import { chooseSeed, SeededRandom } from '../../support/random.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, startRelay, type RelayProcess } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { waitFor } from '../../support/wait.js';
import { Workload, awaitDelivery, formatReport, type DeliveryReport } from '../../support/workload.js';

const COLLS = ['orders', 'customers'];

/**
 * Writes changes while the relay is stopped `times` times with `signal` (and restarted), then reads
 * every topic back. The writer runs until the last stop, so every stop lands mid-stream. Stop points and
 * the workload come from a seeded generator (the seed is printed; TEST_SEED replays it).
 */
async function interruptMidStream(
  ctx: RelayTestContext,
  mode: string,
  signal: 'SIGKILL' | 'SIGTERM',
  times: number,
  afterStop: (relay: RelayProcess, code: number) => void = () => {},
): Promise<DeliveryReport> {
  const random = new SeededRandom(chooseSeed());
  const env = ctx.env({
    RELAY_WATCH: COLLS.map((c) => `${ctx.db}.${c}`).join(','),
    RELAY_CHECKPOINT_MODE: mode,
  });
  let relay = await startRelayReady(env);
  let stops = 0;
  const workload = new Workload(ctx.mongo, {
    db: ctx.db,
    collections: COLLS,
    documents: 40,
    changes: 100_000,
    pauseMs: 1,
    seed: random.derive(),
    transactionShare: getServices().capabilities.transactionEvents ? 0.02 : 0,
    stop: () => stops >= times,
  });
  const done = workload.run();
  while (stops < times) {
    await new Promise((r) => setTimeout(r, random.between(700, 1600)));
    afterStop(relay, await relay.kill(signal));
    stops += 1;
    relay = await startRelayReady(env);
  }
  const log = await done;
  const collectors = await Promise.all(COLLS.map((c) => collectTopic(ctx.topic(c))));
  try {
    const report = await awaitDelivery(log, () => collectors.flatMap((c) => c.messages));
    const name = signal === 'SIGKILL' ? 'relay-kill' : 'relay-sigterm';
    console.log(`      ${formatReport(name, report, { stops }, { mode, seed: random.seed })}`);
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

  for (const mode of CHECKPOINT_MODES) {
    context(`in checkpoint mode ${mode}`, function () {
      // Catching up after each restart takes long on a loaded machine in the per-event mode; a loss shows as a
      // delivery stall (awaitDelivery), not as this bound.
      this.timeout(600_000);
      it('loses nothing when killed with SIGKILL at several points mid-stream; duplicates only repeat published change IDs', async function () {
        ctx = await relayTestContext('sigkill');
        const report = await interruptMidStream(ctx, mode, 'SIGKILL', 4);
        expect(report.changes).to.be.greaterThan(500);
        expect(report.conflictingDuplicates).to.equal(0);
      });

      it('publishes no duplicate at all across a graceful stop (SIGTERM) and restart', async function () {
        ctx = await relayTestContext('graceful');
        const report = await interruptMidStream(ctx, mode, 'SIGTERM', 3, (relay, code) => {
          expect(
            code,
            `graceful stop exit code; last log lines:\n${relay.stdout.slice(-6).join('\n')}\n${relay.stderr.join('')}`,
          ).to.equal(0);
          expect(relay.logs.some((l) => l.msg.startsWith('stopped: every read event acknowledged'))).to.equal(
            true,
          );
        });
        expect(report.duplicates).to.equal(0);
      });
    });
  }

  it('exits with code 0 on SIGTERM when idle, persisting the last position (moved on by writes it does not watch)', async function () {
    ctx = await relayTestContext('idle-stop');
    const relay = await startRelay(ctx.env());
    await relay.waitForLog((l) => l.msg === 'change stream open', 60_000);
    // A write elsewhere moves the server's high-water mark past it; the idle relay's position follows.
    const session = ctx.mongo.startSession();
    let elsewhere: Timestamp;
    try {
      await ctx.mongo.db(`${ctx.db}_other`).collection('x').insertOne({ at: 1 }, { session });
      elsewhere = session.operationTime!;
    } finally {
      await session.endSession();
    }
    const reached = async () => {
      const cp = await ctx.readCheckpoint();
      const time = cp?.token ? clusterTimeOfToken(cp.token as { _data: string }) : null;
      return time !== null && time.greaterThanOrEqual(elsewhere);
    };
    await waitFor(reached, { timeoutMs: 30_000, message: 'the checkpoint past the unwatched write' });
    expect(await relay.kill('SIGTERM')).to.equal(0);
    const cp = await ctx.readCheckpoint();
    expect(cp?.lease ?? null, 'lease released').to.equal(null);
    const stopped = relay.logs.find((l) => l.msg.startsWith('stopped:'));
    expect(cp?.token?._data, 'the stored checkpoint is the position the relay stopped at').to.equal(
      stopped?.checkpoint,
    );
    expect(await reached(), 'and it never went back').to.equal(true);
    await ctx.mongo
      .db(`${ctx.db}_other`)
      .dropDatabase()
      .catch(() => undefined);
  });
});
