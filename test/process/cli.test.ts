import { expect } from 'chai';
import { BSON } from 'mongodb';
import { collectTopic } from '../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { killAllRelays, runCli, startRelay, startRelayReady, freePort } from '../support/relayProcess.js';
import { waitFor } from '../support/wait.js';

describe('CLI (mongo-kafka-relay) against the real services', function () {
  // Several CLI processes per test, each compiling the sources with tsx: minutes on a loaded machine.
  this.timeout(300_000);
  let ctx: RelayTestContext;
  before(async () => {
    ctx = await relayTestContext('cli');
  });
  afterEach(() => killAllRelays());
  after(() => ctx.close());

  it('token set / show / clear round-trip, with --json for scripts', async () => {
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.items` });
    const token = '8265F1A2B3000000012B022C0100296E5A1004ABCDEF0123';
    const set = await runCli(['token', 'set', `{"_data":"${token.toLowerCase()}"}`], env);
    expect(set.code, set.stderr).to.equal(0);
    const show = await runCli(['token', 'show', '--json'], env);
    expect(show.code).to.equal(0);
    const view = JSON.parse(show.stdout) as Record<string, unknown>;
    expect(view).to.include({ checkpointId: ctx.checkpointId, token, clusterTime: `${0x65f1a2b3}.1` });
    expect(view.lagSeconds).to.be.a('number');
    const human = await runCli(['token', 'show'], env);
    expect(human.stdout)
      .to.match(/token\s+8265F1A2B3/)
      .and.to.match(/lag\s+\d+ s behind now/);
    const refused = await runCli(['token', 'clear'], env);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.contain('--yes');
    const clear = await runCli(['token', 'clear', '--yes'], env);
    expect(clear.code).to.equal(0);
    const after = JSON.parse((await runCli(['token', 'show', '--json'], env)).stdout) as Record<
      string,
      unknown
    >;
    expect(after).to.include({ exists: false, token: null });
  });

  for (const bad of ['xyz', '82AB', '{"_data": 1}', '{"token":"82AB"}', '{oops']) {
    it(`rejects the malformed token ${JSON.stringify(bad)} with exit 2 and a clear message`, async () => {
      const r = await runCli(['token', 'set', bad], ctx.env());
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/invalid token: .*(resume token|_data|JSON)/);
    });
  }

  it('resume-from-token <token of change k> publishes k+1... and not k', async () => {
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.resume`,
      RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-resume`,
    });
    const coll = ctx.mongo.db(ctx.db).collection<{ _id: number }>('resume');
    const watch = coll.watch();
    await watch.tryNext();
    for (let i = 1; i <= 6; i++) await coll.insertOne({ _id: i });
    const tokens: string[] = [];
    while (tokens.length < 6) tokens.push(((await watch.next())._id as { _data: string })._data);
    await watch.close();
    const k = 3;
    const noStart = await runCli(['resume-from-token', tokens[k - 1]!, '--no-start'], env);
    expect(noStart.code, noStart.stderr).to.equal(0);
    const relay = await startRelay({ ...env, METRICS_PORT: String(await freePort()) }, [
      'resume-from-token',
      tokens[k - 1]!,
    ]);
    await relay.waitForLog((l) => l.msg === 'change stream open', 60_000);
    const collector = await collectTopic(ctx.topic('resume'));
    try {
      const got = await collector.waitForCount(6 - k, 60_000);
      await new Promise((r) => setTimeout(r, 1500));
      const ids = collector.messages
        .map((m) => (BSON.EJSON.parse(m.value!) as { documentKey: { _id: number } }).documentKey._id)
        .sort();
      expect(ids).to.deep.equal([4, 5, 6]);
      expect(got.map((m) => m.key)).to.not.include(tokens[k - 1]);
    } finally {
      await collector.stop();
    }
  });

  it('token set refuses while a live relay holds the lease, unless --force', async () => {
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.leased`,
      RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-leased`,
    });
    await startRelayReady(env);
    const token = '8265F1A2B3000000012B022C0100296E5A1004';
    const refused = await runCli(['token', 'set', token], env);
    expect(refused.code).to.equal(5);
    expect(refused.stderr).to.contain('leased by another relay').and.to.contain('--force');
    const forced = await runCli(['token', 'clear', '--yes', '--force'], env);
    expect(forced.code).to.equal(0);
  });

  it('status shows the checkpoint and the running daemon readiness and key metrics', async () => {
    const port = await freePort();
    const env = ctx.env({
      RELAY_WATCH: `${ctx.db}.status`,
      RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-status`,
      METRICS_PORT: String(port),
    });
    await startRelayReady(env);
    await ctx.mongo.db(ctx.db).collection<{ _id: number }>('status').insertOne({ _id: 1 });
    const status = await waitFor(
      async () => {
        const r = await runCli(['status', '--json'], env);
        const parsed = JSON.parse(r.stdout) as {
          daemon: { ready: boolean; metrics: Record<string, number> };
        };
        return parsed.daemon.metrics?.mongo_kafka_relay_events_total === 1 && parsed;
      },
      { timeoutMs: 30_000, message: 'status to show one event' },
    );
    expect(status.daemon.ready).to.equal(true);
    const human = await runCli(['status'], env);
    expect(human.stdout).to.match(/daemon\s+ready at http:\/\/127\.0\.0\.1:/);
  });

  it('check-config passes on the local services, one line per check', async () => {
    const r = await runCli(['check-config'], ctx.env({ RELAY_WATCH: `${ctx.db}.items,${ctx.db}.other` }));
    expect(r.code, r.stdout).to.equal(0);
    expect(r.stdout).to.match(/^ok\s+mongodb ping/m);
    expect(r.stdout).to.match(/^ok\s+change stream on .*\.items/m);
    expect(r.stdout).to.match(/^ok\s+kafka metadata/m);
    expect(r.stdout).to.match(/^ok\s+checkpoint store/m);
  });

  it('check-config fails clearly on an unreachable Kafka', async () => {
    const port = await freePort();
    const r = await runCli(['check-config'], ctx.env({ KAFKA_BROKERS: `127.0.0.1:${port}` }), 90_000);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(new RegExp(`^FAIL kafka metadata 127\\.0\\.0\\.1:${port}: `, 'm'));
  });

  it('check-config fails clearly on a bad MongoDB URI, without printing its password', async () => {
    const port = await freePort();
    const r = await runCli(
      ['check-config'],
      ctx.env({ MONGODB_URI: `mongodb://relay:S3CRET@127.0.0.1:${port}/?serverSelectionTimeoutMS=1000` }),
    );
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/^FAIL mongodb ping mongodb:\/\/\*\*\*@127\.0\.0\.1/m);
    expect(r.stdout + r.stderr).not.to.contain('S3CRET');
  });

  it('prints help for every command and exits 0', async () => {
    for (const args of [
      ['--help'],
      ['start', '--help'],
      ['token', 'show', '--help'],
      ['check-config', '--help'],
      ['resume-from-token', '--help'],
      ['status', '--help'],
    ]) {
      const r = await runCli(args, {});
      expect(r.code, args.join(' ')).to.equal(0);
      expect(r.stdout).to.contain('Usage: mongo-kafka-relay');
    }
  });
});
