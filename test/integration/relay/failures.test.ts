import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import {
  killAllRelays,
  startRelayReady,
  startRelay,
  runCli,
  parseMetrics,
  sumMetric,
  type RelayProcess,
} from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';
import { startDedicatedStandIn } from '../../support/standIn.js';
import type { MongoService } from '../../../scripts/services/mongo.js';

/** A real token of this deployment with its cluster time replaced by 1.1: a position older than any oplog. */
function ancientToken(real: string): string {
  return `82${'0000000100000001'}${real.slice(18)}`;
}

/** The change ID of a fresh insert into <db>.items, read with the driver. */
async function tokenOfAnInsert(ctx: RelayTestContext): Promise<string> {
  const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
  const watch = items.watch();
  await watch.tryNext();
  await items.insertOne({ _id: 1 });
  const token = ((await watch.next())._id as { _data: string })._data;
  await watch.close();
  return token;
}

describe('relay: failures with a documented outcome', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  it('exits with code 4 and names the stream, the lost position and the options when the resume point left the oplog', async function () {
    ctx = await relayTestContext('history-lost');
    const real = await tokenOfAnInsert(ctx);
    const token = ancientToken(real);
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.items` });
    const set = await runCli(['token', 'set', token], env);
    expect(set.code, set.stderr).to.equal(0);
    const result = await runCli(['start'], env, 90_000);
    expect(result.code, result.stdout.slice(-2000)).to.equal(4);
    const errorLine = result.stdout.split('\n').find((l) => l.includes('no longer in the oplog'));
    expect(errorLine, result.stdout.slice(-3000)).to.not.equal(undefined);
    expect(errorLine).to.contain(ctx.checkpointId);
    expect(errorLine).to.contain(token);
    expect(errorLine).to.contain('resume-from-token');
    expect(errorLine).to.contain('RELAY_START_AT');
    expect(errorLine).to.contain('RELAY_ON_HISTORY_LOST=restart-from-now');
    // Nothing was skipped silently: the checkpoint still holds the lost position.
    expect((await ctx.readCheckpoint())?.token?._data).to.equal(token);
  });

  it('with RELAY_ON_HISTORY_LOST=restart-from-now, logs an error, counts it and carries on from now', async function () {
    ctx = await relayTestContext('history-skip');
    const real = await tokenOfAnInsert(ctx);
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.items`, RELAY_ON_HISTORY_LOST: 'restart-from-now' });
    expect((await runCli(['token', 'set', ancientToken(real)], env)).code).to.equal(0);
    const relay = await startRelay(env);
    await relay.waitForLog(
      (l) => l.level === 50 && l.msg.includes('history lost'),
      60_000,
      'the history-lost error line',
    );
    await waitFor(async () => (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`)).status === 200, {
      timeoutMs: 30_000,
    });
    await ctx.mongo.db(ctx.db).collection<{ _id: number }>('items').insertOne({ _id: 2 });
    const collector = await collectTopic(ctx.topic('items'));
    try {
      const [rec] = await collector.waitForCount(1, 30_000);
      expect(rec!.headers['document-key']).to.equal('{"_id":{"$numberInt":"2"}}');
      const metrics = parseMetrics(await relay.metrics());
      expect(metrics.get('mongo_kafka_relay_stream_restarts_total{reason="history-lost"}')).to.equal(1);
    } finally {
      await collector.stop();
    }
  });

  describe('falling behind the oplog while running (CappedPositionLost; stand-in only: a real oplog cannot be made 60 entries small)', function () {
    let server: MongoService | undefined;
    afterEach(async () => {
      await killAllRelays();
      await ctx?.close();
      await server?.stop();
      server = undefined;
    });

    /** A relay on a stand-in with a tiny oplog, paused (SIGSTOP) while 200 writes push its position out. */
    async function fallBehind(extra: Record<string, string> = {}): Promise<RelayProcess> {
      server = await startDedicatedStandIn({ oplogMaxEntries: 60 });
      ctx = await relayTestContext('capped', server.uri);
      const relay = await startRelayReady(ctx.env({ RELAY_WATCH: `${ctx.db}.items`, ...extra }));
      const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
      await items.insertOne({ _id: 0 });
      await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === 1, {
        message: 'the first change published',
      });
      relay.child.kill('SIGSTOP');
      try {
        for (let i = 1; i <= 200; i++) await items.insertOne({ _id: i });
      } finally {
        relay.child.kill('SIGCONT');
      }
      return relay;
    }

    it('exits with code 4 naming the checkpoint and the options', async function () {
      const relay = await fallBehind();
      const code = await Promise.race([
        relay.exited,
        new Promise<number>((r) => setTimeout(() => r(-1), 60_000)),
      ]);
      expect(code, relay.stdout.slice(-5).join('\n')).to.equal(4);
      const line = relay.logs.find((l) => l.level === 50 && l.msg.includes('no longer in the oplog'));
      expect(line?.msg, relay.stdout.slice(-5).join('\n')).to.contain(ctx.checkpointId);
      for (const option of ['resume-from-token', 'RELAY_START_AT', 'RELAY_ON_HISTORY_LOST=restart-from-now'])
        expect(line?.msg).to.contain(option);
    });

    it('with RELAY_ON_HISTORY_LOST=restart-from-now, logs an error, counts it and carries on from now', async function () {
      const relay = await fallBehind({ RELAY_ON_HISTORY_LOST: 'restart-from-now' });
      await relay.waitForLog(
        (l) => l.level === 50 && l.msg.includes('history lost'),
        60_000,
        'the history-lost error line',
      );
      const items = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`)).status === 200,
        {
          timeoutMs: 30_000,
          message: 'ready again',
        },
      );
      await items.insertOne({ _id: 1000 });
      const collector = await collectTopic(ctx.topic('items'));
      try {
        await waitFor(
          () => collector.messages.some((m) => m.headers['document-key'] === '{"_id":{"$numberInt":"1000"}}'),
          { timeoutMs: 60_000, message: 'the change after the gap published' },
        );
        const metrics = parseMetrics(await relay.metrics());
        expect(metrics.get('mongo_kafka_relay_stream_restarts_total{reason="history-lost"}')).to.equal(1);
        expect(relay.child.exitCode, 'still running').to.equal(null);
      } finally {
        await collector.stop();
      }
    });
  });

  it('sends an event larger than Kafka accepts to the dead-letter topic, counts it, and moves on', async function () {
    ctx = await relayTestContext('too-large');
    const relay = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.docs`, KAFKA_MAX_MESSAGE_BYTES: '20000' }),
    );
    const docs = ctx.mongo.db(ctx.db).collection<{ _id: number; blob: string }>('docs');
    await docs.insertOne({ _id: 1, blob: 'x'.repeat(100) });
    await docs.insertOne({ _id: 2, blob: 'y'.repeat(50_000) });
    await docs.insertOne({ _id: 3, blob: 'z'.repeat(100) });
    const main = await collectTopic(ctx.topic('docs'));
    const dead = await collectTopic(`${ctx.topicPrefix}.dead-letter`);
    try {
      const published = await main.waitForCount(2, 60_000);
      expect(published.map((r) => r.headers['document-key']).sort()).to.deep.equal([
        '{"_id":{"$numberInt":"1"}}',
        '{"_id":{"$numberInt":"3"}}',
      ]);
      const [dl] = await dead.waitForCount(1, 30_000);
      const body = JSON.parse(dl!.value!) as Record<string, unknown>;
      expect(body).to.include({
        ns: `${ctx.db}.docs`,
        reason: 'too-large',
        documentKey: '{"_id":{"$numberInt":"2"}}',
      });
      expect(body.size).to.be.greaterThan(50_000);
      expect(dl!.key).to.equal(body.changeId);
      const metrics = parseMetrics(await relay.metrics());
      expect(metrics.get('mongo_kafka_relay_dead_letter_total{reason="too-large"}')).to.equal(1);
      await waitFor(async () => (await ctx.readCheckpoint())?.counts?.deadLettered === 1, {
        message: 'the dead-lettered event checkpointed',
      });
    } finally {
      await main.stop();
      await dead.stop();
    }
  });

  it('exits with code 3 naming METRICS_PORT when the metrics port is taken, before it touches the checkpoint', async function () {
    ctx = await relayTestContext('metrics-port');
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const result = await runCli(['start'], { ...ctx.env(), METRICS_PORT: String(port) });
      expect(result.code, result.stdout.slice(-2000)).to.equal(3);
      const line = result.stdout.split('\n').find((l) => l.includes('METRICS_PORT'));
      expect(line, result.stdout.slice(-2000)).to.not.equal(undefined);
      expect(line).to.contain(`METRICS_PORT=${port}`).and.contain('METRICS_HOST=127.0.0.1');
      expect(await ctx.readCheckpoint(), 'no lease taken, nothing written').to.equal(null);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('exits with code 5 when another live relay holds the lease and RELAY_LEASE_WHEN_HELD=exit', async function () {
    ctx = await relayTestContext('lease-exit');
    const env = ctx.env({ RELAY_WATCH: `${ctx.db}.items` });
    const owner = await startRelayReady(env);
    const second = await runCli(['start'], { ...env, RELAY_LEASE_WHEN_HELD: 'exit' });
    expect(second.code).to.equal(5);
    expect(second.stdout + second.stderr).to.contain('leased by another relay');
    expect(owner.child.exitCode).to.equal(null);
    const metrics = parseMetrics(await owner.metrics());
    expect(sumMetric(metrics, 'mongo_kafka_relay_lease_owner')).to.equal(1);
  });
});
