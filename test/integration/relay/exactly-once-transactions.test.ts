/**
 * RELAY_DELIVERY=exactly-once keeps each multi-document MongoDB transaction in one Kafka transaction:
 * a read_committed consumer sees all of its changes or none. Proven from what Kafka committed, read by
 * kcat: every Kafka transaction carries one position record (the token of its last record), so each
 * committed position must fall where a MongoDB transaction ended, never inside one.
 */
import { expect } from 'chai';
import type { MongoClient } from 'mongodb';
import { mongoCapabilities } from '../../support/mongo-capabilities.js';
import { startDedicatedStandIn } from '../../support/standIn.js';
import type { MongoService } from '../../../scripts/services/mongo.js';
import { chooseSeed, SeededRandom } from '../../support/random.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, parseMetrics, startRelayReady, sumMetric } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { READ_COMMITTED, readTopicRecords, requireKcat } from '../../support/kcat.js';
import { waitFor } from '../../support/wait.js';
import type { ReadRecord } from '../../support/workload.js';

const COLLS = ['orders', 'lines'];
const TRANSACTIONS = 120;
const KILLS = 2;

/** Writes `transactions` MongoDB transactions of 5–30 changes, with single writes between them. */
async function writeTransactions(
  client: MongoClient,
  db: string,
  random: SeededRandom,
  transactions: number,
): Promise<number> {
  let changes = 0;
  let next = 0;
  for (let t = 0; t < transactions; t++) {
    const size = 5 + random.int(26);
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        for (let i = 0; i < size; i++) {
          const coll = client.db(db).collection<{ _id: number; t: number }>(COLLS[i % 2]!);
          await coll.insertOne({ _id: next++, t }, { session });
        }
      });
    } finally {
      await session.endSession();
    }
    changes += size;
    const singles = random.int(4);
    for (let s = 0; s < singles; s++) {
      await client
        .db(db)
        .collection<{ _id: number }>(COLLS[s % 2]!)
        .insertOne({ _id: next++ });
      changes += 1;
    }
  }
  return changes;
}

interface Change {
  id: string;
  /** lsid + txnNumber as the record's value gives them; null outside a transaction. */
  transaction: string | null;
}

function changesInStreamOrder(records: ReadRecord[]): Change[] {
  const changes = records.map((r) => {
    const value = JSON.parse(r.value!) as { lsid?: unknown; txnNumber?: unknown };
    const transaction =
      value.lsid === undefined ? null : `${JSON.stringify(value.lsid)}:${JSON.stringify(value.txnNumber)}`;
    return { id: r.key!, transaction };
  });
  // A change ID is the resume token's _data: its text sorts in stream order.
  return changes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

describe('relay: exactly-once keeps a MongoDB transaction in one Kafka transaction', function () {
  this.timeout(300_000);
  let ctx: RelayTestContext | undefined;
  let standIn: MongoService | undefined;

  before(function () {
    requireKcat(this);
  });

  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
    await standIn?.stop();
    standIn = undefined;
  });

  it("commits each MongoDB transaction's changes in one Kafka transaction, even when the Kafka transaction is full first and across relay SIGKILLs (transactions: the run's mongod, else a stand-in with --transactions)", async function () {
    if (!mongoCapabilities().transactionEvents) standIn = await startDedicatedStandIn({ transactions: true });
    ctx = await relayTestContext('eo-txn', standIn?.uri);
    const c = ctx;
    const random = new SeededRandom(chooseSeed());
    const env = c.env({
      RELAY_WATCH: COLLS.map((coll) => `${c.db}.${coll}`).join(','),
      RELAY_DELIVERY: 'exactly-once',
      KAFKA_POSITIONS_TOPIC: `${c.topicPrefix}.positions`,
      // Kafka transactions full after 50 records or 1 ms: without the rule they would end inside
      // MongoDB transactions all the time; every MongoDB transaction (<= 30) still fits in flight.
      RELAY_MAX_IN_FLIGHT: '100',
      RELAY_TRANSACTION_MAX_MS: '1',
    });
    const relays = [await startRelayReady(env)];
    const writing = writeTransactions(c.mongo, c.db, random, TRANSACTIONS);
    // SIGKILLs while transactions are being relayed: an open Kafka transaction is aborted, and the
    // relay resumes from the last committed position, which must never lie inside a MongoDB transaction.
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 300 + random.int(900)));
      await relays.at(-1)!.kill('SIGKILL');
      relays.push(await startRelayReady(env));
    }
    const written = await writing;
    const brokers = getServices().brokers;
    const readAll = async () =>
      (
        await Promise.all(COLLS.map((coll) => readTopicRecords(brokers, c.topic(coll), READ_COMMITTED)))
      ).flat();
    const records = await waitFor(
      async () => {
        const r = await readAll();
        return r.length >= written ? r : null;
      },
      { timeoutMs: 120_000, intervalMs: 1000, message: `${written} committed records` },
    );
    expect(new Set(records.map((r) => r.key)).size, 'every change').to.equal(written);
    expect(records.length, 'each change once').to.equal(written);

    const changes = changesInStreamOrder(records);
    const lastOfTransaction = new Set<string>();
    const seenTransactions = new Set<string>();
    for (let i = 0; i < changes.length; i++) {
      const { id, transaction } = changes[i]!;
      if (transaction === null) continue;
      if (changes[i - 1]?.transaction !== transaction) {
        expect(seenTransactions.has(transaction), `transaction ${transaction} is contiguous`).to.equal(false);
        seenTransactions.add(transaction);
      }
      if (changes[i + 1]?.transaction !== transaction) lastOfTransaction.add(id);
    }
    expect(seenTransactions.size, 'MongoDB transactions in the stream').to.equal(TRANSACTIONS);

    const positions = (await readTopicRecords(brokers, `${c.topicPrefix}.positions`, READ_COMMITTED))
      .filter((r) => r.key === c.checkpointId)
      .map((r) => (JSON.parse(r.value!) as { token: string | null }).token);
    const byId = new Map(changes.map((ch) => [ch.id, ch]));
    let atTransactionEnds = 0;
    const inside: string[] = [];
    for (const token of positions) {
      const change = token === null ? undefined : byId.get(token);
      if (!change?.transaction) continue; // a tick's position, or after a change outside transactions
      if (lastOfTransaction.has(change.id)) atTransactionEnds += 1;
      else inside.push(change.id);
    }
    console.log(
      `      seed ${random.seed}: ${written} changes, ${KILLS} SIGKILLs, ${positions.length} Kafka transactions, ${atTransactionEnds} ended with a MongoDB transaction, ${inside.length} inside one`,
    );
    const metrics = parseMetrics(await relays.at(-1)!.metrics());
    const splits = relays
      .flatMap((r) => r.logs)
      .filter((l) => l.msg.includes('split across Kafka transactions'));
    expect(
      sumMetric(metrics, 'mongo_kafka_relay_mongodb_transactions_split_total'),
      `splits: ${JSON.stringify(splits)}`,
    ).to.equal(0);
    expect(inside, 'Kafka transactions that ended inside a MongoDB transaction').to.deep.equal([]);
    expect(atTransactionEnds, 'Kafka transactions that ended with a MongoDB transaction').to.be.greaterThan(
      5,
    );
  });

  it("splits a MongoDB transaction larger than the in-flight limits instead of waiting for it: counted, logged, every change once (transactions: the run's mongod, else a stand-in with --transactions)", async function () {
    if (!mongoCapabilities().transactionEvents) standIn = await startDedicatedStandIn({ transactions: true });
    ctx = await relayTestContext('eo-txn-big', standIn?.uri);
    const c = ctx;
    const relay = await startRelayReady(
      c.env({
        RELAY_WATCH: `${c.db}.orders`,
        RELAY_DELIVERY: 'exactly-once',
        KAFKA_POSITIONS_TOPIC: `${c.topicPrefix}.positions`,
        RELAY_MAX_IN_FLIGHT: '20',
        // Far beyond the test's wait: only the in-flight limit may end the hold.
        KAFKA_TRANSACTION_TIMEOUT_MS: '600000',
      }),
    );
    const orders = c.mongo.db(c.db).collection<{ _id: number }>('orders');
    const session = c.mongo.startSession();
    try {
      await session.withTransaction(async () => {
        await orders.insertMany(
          Array.from({ length: 70 }, (_, i) => ({ _id: i })),
          { session },
        );
      });
    } finally {
      await session.endSession();
    }
    const brokers = getServices().brokers;
    const records = await waitFor(
      async () => {
        const r = await readTopicRecords(brokers, c.topic('orders'), READ_COMMITTED);
        return r.length >= 70 ? r : null;
      },
      { timeoutMs: 60_000, intervalMs: 1000, message: '70 committed records of one large transaction' },
    );
    expect(new Set(records.map((r) => r.key)).size).to.equal(70);
    expect(records.length, 'each change once').to.equal(70);
    const metrics = parseMetrics(await relay.metrics());
    expect(
      metrics.get('mongo_kafka_relay_mongodb_transactions_split_total{reason="in-flight-limit"}'),
    ).to.be.greaterThan(0);
    expect(relay.logs.some((l) => l.msg.includes('does not fit RELAY_MAX_IN_FLIGHT'))).to.equal(true);
  });
});
