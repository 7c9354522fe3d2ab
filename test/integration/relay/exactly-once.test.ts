/**
 * RELAY_DELIVERY=exactly-once against the real broker, read back by an independent client: kcat
 * (librdkafka) with isolation.level=read_committed. A change must appear exactly once whatever
 * happens to the relay; a second producer of the same transactional id fences the first.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ConsumerMetricName, createChangeConsumer } from '../../../src/consumer/index.js';
import { createTopic, kafkaClient } from '../../support/kafka.js';
import { chooseSeed, SeededRandom } from '../../support/random.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, parseMetrics, runCli, startRelayReady } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { READ_COMMITTED, readTopicRecords, requireKcat } from '../../support/kcat.js';
import { waitFor } from '../../support/wait.js';
import {
  Workload,
  formatReport,
  verifyDelivery,
  type DeliveryReport,
  type ReadRecord,
  type WrittenChange,
} from '../../support/workload.js';

const COLLS = ['orders', 'customers'];

/** Every committed record of the collections' topics, as kcat reads them. */
async function readCommitted(ctx: RelayTestContext, properties = READ_COMMITTED): Promise<ReadRecord[]> {
  const brokers = getServices().brokers;
  const perTopic = await Promise.all(COLLS.map((c) => readTopicRecords(brokers, ctx.topic(c), properties)));
  return perTopic.flat();
}

/** Reads until every change of the log is there (or nothing new arrives for a minute). */
async function awaitCommitted(ctx: RelayTestContext, log: readonly WrittenChange[]): Promise<DeliveryReport> {
  let seen = -1;
  let lastProgress = Date.now();
  for (;;) {
    const records = await readCommitted(ctx);
    const report = verifyDelivery(log, records);
    if (report.lost === 0) return report;
    if (records.length !== seen) {
      seen = records.length;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > 60_000) return report;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

describe('relay: exactly-once delivery (RELAY_DELIVERY=exactly-once), read back by kcat with read_committed', function () {
  this.timeout(600_000);
  let ctx: RelayTestContext;

  before(function () {
    requireKcat(this);
  });

  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  function env(extra: Record<string, string> = {}): Record<string, string> {
    return ctx.env({
      RELAY_WATCH: COLLS.map((c) => `${ctx.db}.${c}`).join(','),
      RELAY_DELIVERY: 'exactly-once',
      KAFKA_POSITIONS_TOPIC: `${ctx.topicPrefix}.positions`,
      ...extra,
    });
  }

  it('faults: exactly-once-relay-kill — SIGKILLed at several points mid-stream, every change is seen once (no loss, no duplicate, in order)', async function () {
    ctx = await relayTestContext('eo-kill');
    const random = new SeededRandom(chooseSeed());
    const times = 4;
    let relay = await startRelayReady(env());
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
      await relay.kill('SIGKILL');
      stops += 1;
      relay = await startRelayReady(env());
    }
    const log = await done;
    const report = await awaitCommitted(ctx, log);
    console.log(`      ${formatReport('exactly-once-relay-kill', report, { stops }, { seed: random.seed })}`);
    expect(report.changes).to.be.greaterThan(500);
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.duplicates, 'duplicates seen by a read_committed reader').to.equal(0);
    expect(report.orderViolations).to.equal(0);
    expect(report.unexpected).to.equal(0);
    // The killed relays' open transactions were aborted: a read_uncommitted reader sees their records.
    const uncommitted = verifyDelivery(
      log,
      await readCommitted(ctx, { 'isolation.level': 'read_uncommitted' }),
    );
    console.log(`      read_uncommitted: records of aborted transactions seen = ${uncommitted.duplicates}`);

    // The consumer helper works unchanged on these topics: it reads read_committed (kafkajs's default),
    // so it hands over each committed change once and its seen marks never meet a duplicate; the
    // aborted copies never reach the handler.
    const committed = new Set((await readCommitted(ctx)).map((r) => r.key!));
    const handled = new Map<string, number>();
    const registry = new Registry();
    const kafka = kafkaClient('eo-helper', getServices().brokers);
    const deadLetterTopic = `${ctx.topicPrefix}.helper-dlq`;
    await createTopic(kafka, deadLetterTopic, 1);
    const consumer = createChangeConsumer({
      kafka,
      deadLetter: { topic: deadLetterTopic },
      groupId: `${ctx.topicPrefix}-helper`,
      topics: COLLS.map((c) => ctx.topic(c)),
      fromBeginning: true,
      consumerConfig: { maxWaitTimeInMs: 200, sessionTimeout: 10_000, heartbeatInterval: 1_000 },
      mongo: { client: ctx.mongo },
      seen: { db: ctx.db, collection: 'seen' },
      registry,
      logger: pino({ level: 'silent' }),
      handler: (_event, { changeId }) => void handled.set(changeId, (handled.get(changeId) ?? 0) + 1),
    });
    await consumer.start();
    try {
      await waitFor(() => handled.size >= committed.size, {
        timeoutMs: 120_000,
        intervalMs: 500,
        message: () => `the helper to handle ${committed.size} changes (handled ${handled.size})`,
      });
      // Let anything more (an aborted copy, if it leaked) arrive before judging.
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await consumer.stop();
    }
    expect([...handled.keys()].sort()).to.deep.equal([...committed].sort());
    expect(
      [...handled.values()].every((n) => n === 1),
      'each change handled once',
    ).to.equal(true);
    const duplicates = (await registry.getSingleMetric(ConsumerMetricName.duplicates)?.get())?.values ?? [];
    expect(
      duplicates.reduce((n, v) => n + v.value, 0),
      'duplicates the seen marks dropped',
    ).to.equal(0);
  });

  it('a relay stopped with SIGTERM and started again publishes every change once', async function () {
    ctx = await relayTestContext('eo-term');
    let relay = await startRelayReady(env());
    const workload = new Workload(ctx.mongo, {
      db: ctx.db,
      collections: COLLS,
      documents: 20,
      changes: 600,
      pauseMs: 2,
      seed: chooseSeed(),
    });
    const running = workload.run();
    await new Promise((r) => setTimeout(r, 800));
    expect(await relay.kill('SIGTERM'), 'graceful stop exit code').to.equal(0);
    relay = await startRelayReady(env());
    const log = await running;
    const report = await awaitCommitted(ctx, log);
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.duplicates).to.equal(0);
    // What operators size the mode by: the relay counts its committed transactions and their records.
    const metrics = parseMetrics(await relay.metrics());
    const transactions = metrics.get('mongo_kafka_relay_kafka_transaction_records_count') ?? 0;
    const records = metrics.get('mongo_kafka_relay_kafka_transaction_records_sum') ?? 0;
    expect(transactions, 'Kafka transactions committed by the second relay').to.be.greaterThan(0);
    expect(records, 'change records committed in them').to.be.within(1, log.length);
    expect(metrics.get('mongo_kafka_relay_kafka_transaction_commit_seconds_count')).to.equal(transactions);
    const cp = await ctx.readCheckpoint();
    expect(cp?.token, 'the MongoDB checkpoint mirrors the committed position').to.not.equal(null);
  });

  it("token set moves the committed position (the operator's wins at the next start); token clear is refused with exit 2", async function () {
    ctx = await relayTestContext('eo-token');
    let relay = await startRelayReady(env());
    const coll = ctx.mongo.db(ctx.db).collection(COLLS[0]!);
    for (const n of [1, 2, 3]) await coll.insertOne({ _id: n as never, seq: 1 });
    await waitFor(async () => (await readCommitted(ctx)).length >= 3, {
      timeoutMs: 60_000,
      message: 'three changes committed',
    });
    expect(await relay.kill('SIGTERM')).to.equal(0);
    const byDoc = (records: ReadRecord[], id: number) =>
      records.filter(
        (r) => (JSON.parse(r.value ?? '{}') as { documentKey?: { _id?: number } }).documentKey?._id === id,
      );
    const first = byDoc(await readCommitted(ctx), 1)[0]!;
    const set = await runCli(['token', 'set', first.key!], env());
    expect(set.code, set.stderr).to.equal(0);
    const clear = await runCli(['token', 'clear', '--yes'], env());
    expect(clear.code).to.equal(2);
    expect(clear.stderr).to.contain(`${ctx.topicPrefix}.positions`).and.to.contain('token set');
    relay = await startRelayReady(env());
    // Replayed on purpose: the changes after the operator's token come again, the first does not.
    await waitFor(async () => (await readCommitted(ctx)).length >= 5, {
      timeoutMs: 60_000,
      message: 'the two changes after the token published again',
    });
    const records = await readCommitted(ctx);
    expect([1, 2, 3].map((id) => byDoc(records, id).length)).to.deep.equal([1, 2, 2]);
    expect(await relay.kill('SIGTERM')).to.equal(0);
    // And the position moved on from there: a restart publishes nothing again.
    relay = await startRelayReady(env());
    await new Promise((r) => setTimeout(r, 3000));
    expect((await readCommitted(ctx)).length).to.equal(5);
  });

  it('a second relay with the same transactional id fences the first: the first exits 8 and nothing is published twice', async function () {
    ctx = await relayTestContext('eo-fence');
    const shared = { KAFKA_TRANSACTIONAL_ID: `${ctx.topicPrefix}.shared-txn` };
    const first = await startRelayReady(env(shared));
    const coll = ctx.mongo.db(ctx.db).collection(COLLS[0]!);
    await coll.insertOne({ _id: 1 as never, seq: 1 });
    await waitFor(async () => (await readCommitted(ctx)).length >= 1, {
      timeoutMs: 60_000,
      message: 'the first change committed',
    });
    // Another checkpoint (so the MongoDB lease does not stop it), the same transactional id.
    const second = await startRelayReady(env({ ...shared, RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-2` }));
    await coll.insertOne({ _id: 2 as never, seq: 1 });
    const code = await Promise.race([
      first.exited,
      new Promise<number>((r) => setTimeout(() => r(-1), 60_000)),
    ]);
    expect(code, `the fenced relay's exit code; last logs:\n${first.stdout.slice(-5).join('\n')}`).to.equal(
      8,
    );
    expect(first.logs.some((l) => /fenced this relay's transactional producer/.test(String(l.msg)))).to.equal(
      true,
    );
    // The second relay publishes the change the first could not commit; a read_committed reader sees it once.
    const ofSecondDoc = async () =>
      (await readCommitted(ctx)).filter(
        (r) => (JSON.parse(r.value ?? '{}') as { documentKey?: { _id?: number } }).documentKey?._id === 2,
      );
    await waitFor(async () => (await ofSecondDoc()).length >= 1, {
      timeoutMs: 60_000,
      message: 'the second change committed',
    });
    await new Promise((r) => setTimeout(r, 2000));
    expect(await ofSecondDoc()).to.have.length(1);
    await second.kill('SIGTERM');
  });
});
