/**
 * `snapshot --cancel` and the snapshot lines of `token show`, as an operator runs them: real CLI
 * processes against the real services (issue 20 item 5, parts a and b).
 */
import { expect } from 'chai';
import { Timestamp } from 'mongodb';
import type { CheckpointView } from '../../src/cli/checkpointView.js';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { killAllRelays, runCli, startRelay } from '../support/relayProcess.js';
import { waitFor } from '../support/wait.js';

describe('snapshot --cancel and token show’s snapshot progress (CLI)', function () {
  // Several CLI processes per test, each compiling the sources with tsx: minutes on a loaded machine.
  this.timeout(300_000);
  let ctx: RelayTestContext;
  before(async () => {
    ctx = await relayTestContext('snapshot-cancel');
  });
  afterEach(() => killAllRelays());
  after(() => ctx.close());

  const checkpoints = () => ctx.mongo.db('mongo_kafka_relay').collection('checkpoints');
  const show = async (env: Record<string, string>): Promise<CheckpointView> => {
    const r = await runCli(['token', 'show', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as CheckpointView;
  };

  it('a request shows in token show; --cancel removes it and says what; a second --cancel finds nothing', async () => {
    const target = `${ctx.db}.items`;
    const env = ctx.env({ RELAY_WATCH: target, RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-request` });
    const requested = await runCli(['snapshot', target], env);
    expect(requested.code, requested.stderr).to.equal(0);

    const pending = await show(env);
    expect(pending.snapshot).to.equal(null);
    expect(pending.snapshotRequest?.targets).to.deep.equal([target]);
    expect(pending.snapshotRequest?.requestedBy).to.match(/\(cli\)$/);
    expect(Date.parse(pending.snapshotRequest?.requestedAt ?? '')).to.be.closeTo(Date.now(), 300_000);
    const text = await runCli(['token', 'show'], env);
    expect(text.stdout).to.match(/^lease {8}free$/m);
    expect(text.stdout).to.contain(
      `requested    snapshot of ${target}, requested at ${pending.snapshotRequest?.requestedAt} by ` +
        `${pending.snapshotRequest?.requestedBy}; performed at the relay's next start`,
    );

    const withTarget = await runCli(['snapshot', '--cancel', target], env);
    expect(withTarget.code, withTarget.stderr).to.equal(2);
    expect(withTarget.stderr).to.match(/--cancel takes no targets/);
    expect((await show(env)).snapshotRequest, 'a refused --cancel changes nothing').not.to.equal(null);

    const cancelled = await runCli(['snapshot', '--cancel'], env);
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.contain(
      `cancelled the snapshot of ${target}, requested at ${pending.snapshotRequest?.requestedAt}`,
    );
    expect(cancelled.stdout).not.to.match(/RUNNING/);
    expect((await show(env)).snapshotRequest).to.equal(null);
    expect((await runCli(['token', 'show'], env)).stdout).not.to.match(/^requested/m);

    const again = await runCli(['snapshot', '--cancel'], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/no snapshot request pending for checkpoint .*: nothing cancelled/);

    // Without targets the request is for every watched collection, and token show says so.
    expect((await runCli(['snapshot'], env)).code).to.equal(0);
    expect((await runCli(['token', 'show'], env)).stdout).to.match(
      /^requested {4}snapshot of every watched collection, requested at /m,
    );
  });

  it('--cancel leaves a running snapshot alone and says that it continues', async () => {
    const checkpointId = `${ctx.checkpointId}-running`;
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.*`, RELAY_CHECKPOINT_ID: checkpointId });
    // What a relay stopped in the middle of a copy leaves behind, with a request queued after it.
    const snapshot = {
      id: '1741000000.1-1',
      number: 1,
      reason: 'initial',
      clusterTime: new Timestamp({ t: 1741000000, i: 1 }),
      collections: [
        { db: ctx.db, coll: 'a', estimated: 100 },
        { db: ctx.db, coll: 'b', estimated: 300 },
      ],
      cursor: { index: 1, lastIdJson: '{"$numberInt":"20"}', copied: 120 },
      state: 'running',
      startedAt: new Date(),
    };
    await checkpoints().insertOne({
      _id: checkpointId as never,
      token: null,
      startAt: new Timestamp({ t: 1741000000, i: 1 }),
      clusterTime: null,
      counts: { published: 0, filtered: 0, deadLettered: 0 },
      writtenAt: new Date(),
      fingerprint: null,
      watch: null,
      snapshot,
      snapshotRequest: { targets: [], requestedAt: new Date(), requestedBy: 'ann@ops (cli)' },
    });

    const view = await show(env);
    expect(view.snapshot).to.include({
      state: 'running',
      collectionsDone: 1,
      collectionsTotal: 2,
      current: `${ctx.db}.b`,
      copied: 120,
      estimatedRemaining: 280,
    });
    expect((await runCli(['token', 'show'], env)).stdout).to.match(
      new RegExp(`^ {13}collections 1 of 2 done, copying ${ctx.db}\\.b$`, 'm'),
    );

    const cancelled = await runCli(['snapshot', '--cancel'], env);
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.match(/cancelled the snapshot of every watched collection/);
    expect(cancelled.stdout).to.match(
      /a snapshot is RUNNING \(id 1741000000\.1-1, .*--cancel does not stop it/,
    );
    const after = await checkpoints().findOne({ _id: checkpointId as never });
    expect(after?.snapshotRequest).to.equal(undefined);
    expect(after?.snapshot).to.deep.include({ state: 'running', cursor: snapshot.cursor });

    // Nothing pending, still running: both said.
    const again = await runCli(['snapshot', '--cancel'], env);
    expect(again.stdout)
      .to.match(/no snapshot request pending/)
      .and.to.match(/RUNNING/);
  });

  it('token show --json after a relay’s initial snapshot: done, every collection, documents copied', async () => {
    const checkpointId = `${ctx.checkpointId}-done`;
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.copied`,
      RELAY_CHECKPOINT_ID: checkpointId,
      RELAY_SNAPSHOT: 'initial',
    });
    await ctx.mongo
      .db(ctx.db)
      .collection('copied')
      .insertMany(Array.from({ length: 25 }, (_, i) => ({ i })));
    const relay = await startRelay(env);
    const complete = await relay.waitForLog((l) => l.msg.startsWith('snapshot complete'), 120_000);
    expect(complete.copied).to.equal(25);
    // The copy is marked done with the checkpoint write after it; a clean stop flushes that write.
    await waitFor(
      async () => (await checkpoints().findOne({ _id: checkpointId as never }))?.snapshot?.state === 'done',
      {
        timeoutMs: 60_000,
        message: 'the snapshot marked done in the checkpoint',
      },
    );
    await relay.kill('SIGTERM');

    const view = await show(env);
    expect(view.snapshot).to.include({
      state: 'done',
      reason: 'initial',
      collectionsDone: 1,
      collectionsTotal: 1,
      current: null,
      copied: 25,
      estimatedRemaining: 0,
    });
    expect(view.snapshot?.startedAt).to.be.a('string');
    expect(view.snapshot?.completedAt).to.be.a('string');
    expect(view.snapshotRequest).to.equal(null);
    expect((await runCli(['token', 'show'], env)).stdout)
      .to.match(/^snapshot {5}done: id \S+, reason initial, started at \S+, completed at \S+$/m)
      .and.to.match(/^ {13}copied 25 documents$/m);
  });
});
