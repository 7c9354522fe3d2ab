/**
 * The relay and the consumer helper together: changes written to MongoDB, the relay SIGKILLed and
 * restarted in between, and the materialized-view example (examples/materialized-view) ends identical
 * to the source collection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { createTopic, kafkaClient } from '../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { REPO_ROOT, killAllRelays, startRelayReady } from '../support/relayProcess.js';
import { getServices } from '../support/services.js';
import { Workload } from '../support/workload.js';
import { waitFor } from '../support/wait.js';

describe('relay + consumer helper: the materialized-view example', function () {
  let ctx: RelayTestContext;
  let view: ChildProcess | undefined;
  after(async () => {
    view?.kill('SIGKILL');
    await killAllRelays();
    await ctx?.close();
    await ctx?.mongo
      .db(`${ctx.db}_view`)
      .dropDatabase()
      .catch(() => undefined);
  });

  it('ends identical to the source collection although the relay was killed twice mid-stream', async () => {
    ctx = await relayTestContext('mview');
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.orders` });
    await createTopic(kafkaClient(), ctx.topic('orders'), 3);
    let relay = await startRelayReady(env);
    const s = getServices();
    view = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'examples/materialized-view/index.ts')],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          KAFKA_BROKERS: s.brokers,
          MONGODB_URI: s.mongoUri,
          SOURCE_TOPIC: ctx.topic('orders'),
          VIEW_DB: `${ctx.db}_view`,
          VIEW_COLL: 'orders',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    let kills = 0;
    const workload: Workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: ['orders'],
      documents: 30,
      changes: 50_000,
      pauseMs: 2,
      seed: 11,
      stop: (): boolean => kills >= 2 && workload.log.length >= 600,
    });
    const done = workload.run();
    while (kills < 2) {
      await new Promise((r) => setTimeout(r, 1200));
      await relay.kill('SIGKILL');
      kills += 1;
      relay = await startRelayReady(env);
    }
    await done;
    const source = ctx.mongo.db(ctx.db).collection('orders');
    const viewColl = ctx.mongo.db(`${ctx.db}_view`).collection('orders');
    let diff = '';
    await waitFor(
      async () => {
        const want = await source.find().sort({ _id: 1 }).toArray();
        const got = (
          await viewColl
            .find({ _deleted: { $ne: true } })
            .sort({ _id: 1 })
            .toArray()
        ).map(({ _applied: _a, ...rest }) => rest);
        diff = `source ${want.length} documents, view ${got.length}`;
        // An empty source would make an empty view "equal": the workload leaves documents behind.
        return want.length > 0 && JSON.stringify(got) === JSON.stringify(want);
      },
      { timeoutMs: 120_000, intervalMs: 1000, message: () => `the view to equal the source (${diff})` },
    );
    expect(view.exitCode, 'the view process never crashed').to.equal(null);
  });
});
