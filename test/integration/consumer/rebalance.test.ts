import { expect } from 'chai';
import { ObjectId, type ClientSession } from 'mongodb';
import { Registry } from 'prom-client';

import type { ChangeEvent, ConsumerMode } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord, type RelayRecord } from '../../support/change-records.js';
import {
  ConsumerTestKit,
  probeTransactions,
  skipUnless,
  sleep,
  waitFor,
  type Capability,
} from './helpers.js';

interface StateDoc {
  _id: string;
  /** Every version the handlers wrote, in the order they wrote them. */
  writes: number[];
}

describe('ChangeConsumer: two members of one group, a rebalance during a slow handler (integration)', function () {
  const kit = new ConsumerTestKit();
  let transactions: Capability;

  before(async () => {
    await kit.setUp();
    transactions = await probeTransactions(kit.client);
  });
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  const SLOW_MS = 8_000;
  const documents = 8;
  const versions = 6;

  /**
   * Member A handles alone until it is in the middle of a handler that takes SLOW_MS (and honours its
   * abort signal); then member B joins the group. The rebalance timeout (3 s) is shorter than that
   * handler: a member that stays on it loses its partitions to B, which handles the same records and
   * newer changes of the same documents, and the old write would land last.
   */
  async function rebalanceDuringSlowHandler(mode: ConsumerMode) {
    const partitions = 4;
    const topic = await kit.topic(`rebalance-${mode}`, partitions);
    const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
    const ids = Array.from({ length: documents }, () => new ObjectId());
    const records: RelayRecord[] = [];
    for (let version = 0; version < versions; version++) {
      for (const _id of ids) {
        const event =
          version === 0 ? factory.insert({ _id, version }) : factory.update({ _id, version }, { version });
        records.push(toRelayRecord(event, { partitions }));
      }
    }
    await kit.produce(topic, records);

    const suffix = topic.replace(/[^a-zA-Z0-9]/g, '_');
    const state = kit.db.collection<StateDoc>(`state_${suffix}`);
    const effects = kit.db.collection<{ _id: string; count: number }>(`effects_${suffix}`);
    // Collections must exist before a transaction writes to them (MongoDB < 4.4).
    await state.insertOne({ _id: 'created', writes: [] });
    await effects.insertOne({ _id: 'created', count: 0 });

    let slowNext = false;
    let slowStartedAt = 0;
    let handledByA = 0;
    const write = async (event: ChangeEvent, changeId: string, session?: ClientSession): Promise<void> => {
      if (event.operationType !== 'insert' && event.operationType !== 'update') return;
      const version = Number(event.fullDocument?.version);
      const opts = session ? { session } : {};
      await state.updateOne(
        { _id: String(event.documentKey._id) },
        { $push: { writes: version } },
        { upsert: true, ...opts },
      );
      await effects.updateOne({ _id: changeId }, { $inc: { count: 1 } }, { upsert: true, ...opts });
    };
    const handlerFor =
      (member: 'A' | 'B') =>
      async (
        event: ChangeEvent,
        { changeId, signal, session }: { changeId: string; signal: AbortSignal; session?: ClientSession },
      ): Promise<void> => {
        let ms = 20;
        if (member === 'A' && slowNext) {
          slowNext = false;
          slowStartedAt = Date.now();
          ms = SLOW_MS;
        }
        await sleep(ms, signal);
        await write(event, changeId, session);
        if (member === 'A') handledByA++;
      };

    const options = kit.baseOptions(topic);
    const common = {
      ...options,
      consumerConfig: {
        maxWaitTimeInMs: 200,
        sessionTimeout: 6_000,
        heartbeatInterval: 300,
        rebalanceTimeout: 3_000,
      },
      heartbeatIntervalMs: 200,
      partitionsConcurrently: partitions,
    };
    const start = (member: 'A' | 'B') =>
      mode === 'transactional'
        ? kit.start({ ...common, registry: new Registry(), mode, handler: handlerFor(member) })
        : kit.start({ ...common, registry: new Registry(), handler: handlerFor(member) });

    await start('A');
    await waitFor(() => handledByA >= 5, { timeoutMs: 30_000, message: 'member A handled a few changes' });
    slowNext = true;
    await waitFor(() => slowStartedAt > 0, { timeoutMs: 30_000, message: 'member A in its slow handler' });
    await start('B');

    const finalVersion = versions - 1;
    await waitFor(
      async () => {
        const docs = await state.find({ _id: { $in: ids.map(String) } }).toArray();
        return docs.length === documents && docs.every((doc) => doc.writes.includes(finalVersion));
      },
      { timeoutMs: 90_000, message: 'every document reached its last version' },
    );
    // Past the moment the slow handler would have written, had it not given up.
    const lateWriteAt = slowStartedAt + SLOW_MS + 2_000;
    if (Date.now() < lateWriteAt) await sleep(lateWriteAt - Date.now());

    const docs = await state.find({ _id: { $in: ids.map(String) } }).toArray();
    const counts = await effects.find({ _id: { $in: records.map((record) => record.key) } }).toArray();
    return { docs, counts, records };
  }

  it("never lets a document's state go backwards in idempotent-handler mode (the old owner's handler is aborted)", async () => {
    const { docs, counts, records } = await rebalanceDuringSlowHandler('idempotent-handler');
    for (const doc of docs) {
      const backwards = doc.writes.findIndex(
        (version, index) => index > 0 && version < doc.writes[index - 1]!,
      );
      expect(backwards, `document ${doc._id} writes ${JSON.stringify(doc.writes)}`).to.equal(-1);
      expect(doc.writes.at(-1), `document ${doc._id} ends at its last version`).to.equal(versions - 1);
    }
    expect(counts.map((count) => count._id).sort()).to.deep.equal(records.map((record) => record.key).sort());
  });

  it('handles each change exactly once in transactional mode (real mongod only: needs transactions)', async function () {
    skipUnless(this, transactions, 'transactions');
    const { docs, counts, records } = await rebalanceDuringSlowHandler('transactional');
    expect(counts).to.have.length(records.length);
    for (const count of counts) expect(count.count, `change ${count._id}`).to.equal(1);
    for (const doc of docs) expect(doc.writes).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });
});
