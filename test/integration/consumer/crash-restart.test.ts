import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import {
  ConsumerTestKit,
  TEST_DB,
  openTransactionReapedWithinMs,
  probeTransactions,
  services,
  skipUnless,
  transactionLifetimeSeconds,
  waitFor,
  type Capability,
} from './helpers.js';

const FIXTURE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../fixtures/consumer/run-consumer.ts',
);

interface HandledDoc {
  _id: string;
  count: number;
  pids: number[];
}

/** The fixture process, with its output kept for failure messages. */
class ConsumerProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async started(): Promise<void> {
    await waitFor(() => this.output.join('').includes('"event":"started"') || !this.running, {
      timeoutMs: 60_000,
      message: () => `the consumer process to start; output: ${this.output.join('')}`,
    });
    if (!this.running) throw new Error(`the consumer process exited: ${this.output.join('')}`);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }
}

/** Each handler call takes at least this long in the fixture. */
const HANDLER_DELAY_MS = 40;
/** Marks are written once the oldest unwritten one is this old (the helper's default). */
const SEEN_FLUSH_INTERVAL_MS = 100;
/**
 * Idempotent-handler mode re-runs, per partition, at most the records whose marks were not written yet
 * when the process died: those handled within one flush interval, plus the one in hand.
 */
const RERUNS_PER_PARTITION = Math.ceil(SEEN_FLUSH_INTERVAL_MS / HANDLER_DELAY_MS) + 1;

describe('ChangeConsumer killed mid-stream and restarted (integration, child process)', function () {
  const kit = new ConsumerTestKit();
  const processes: ConsumerProcess[] = [];
  let transactions: Capability;

  before(async () => {
    await kit.setUp();
    transactions = await probeTransactions(kit.client);
  });
  afterEach(async () => {
    for (const child of processes.splice(0)) {
      child.kill('SIGKILL');
      await child.exited;
    }
  });
  after(() => kit.tearDown());

  /**
   * Publishes `total` changes over 2 partitions, runs the fixture until it handled some, SIGKILLs it,
   * runs it again until every change was handled, stops it with SIGTERM. Returns the handled counts.
   */
  async function killAndRestart(
    mode: 'idempotent-handler' | 'transactional',
    total: number,
    restartWithinMs = 90_000,
  ) {
    const partitions = 2;
    const topic = await kit.topic(`crash-${mode}`, partitions);
    const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });
    const records = Array.from({ length: total }, (_, seq) =>
      toRelayRecord(factory.insert({ _id: new ObjectId(), seq }), { partitions }),
    );
    await kit.produce(topic, records);

    const suffix = topic.replace(/[^a-zA-Z0-9]/g, '_');
    const handled = kit.db.collection<HandledDoc>(`handled_${suffix}`);
    const env = {
      KAFKA_BROKERS: services().brokers,
      MONGODB_URI: services().mongoUri,
      CONSUMER_TOPIC: topic,
      CONSUMER_GROUP: `group-${topic}`,
      CONSUMER_MODE: mode,
      CONSUMER_DB: TEST_DB,
      SEEN_COLLECTION: `seen_${suffix}`,
      HANDLED_COLLECTION: `handled_${suffix}`,
      HANDLER_DELAY_MS: String(HANDLER_DELAY_MS),
      SEEN_FLUSH_INTERVAL_MS: String(SEEN_FLUSH_INTERVAL_MS),
    };

    const first = new ConsumerProcess(env);
    processes.push(first);
    await first.started();
    await waitFor(async () => (await handled.countDocuments()) >= total / 4, {
      timeoutMs: 60_000,
      message: () => `the first process to handle ${total / 4} changes; output: ${first.output.join('')}`,
    });
    first.kill('SIGKILL');
    expect((await first.exited).signal).to.equal('SIGKILL');
    const handledBeforeKill = await handled.countDocuments();
    expect(handledBeforeKill, 'killed mid-stream').to.be.lessThan(total);

    const second = new ConsumerProcess(env);
    processes.push(second);
    await second.started();
    await waitFor(async () => (await handled.countDocuments()) === total, {
      timeoutMs: restartWithinMs,
      message: () => `all ${total} changes handled after the restart; output: ${second.output.join('')}`,
    });
    second.kill('SIGTERM');
    expect((await second.exited).code, second.output.join('')).to.equal(0);

    const docs = await handled.find().toArray();
    const seenMarks = await kit.db.collection(env.SEEN_COLLECTION).countDocuments();
    return { docs, records, seenMarks, partitions, handledBeforeKill, pids: [first.pid, second.pid] };
  }

  it('skips no change in idempotent-handler mode: each is handled at least once, re-runs only for records whose marks were not written yet', async function () {
    const total = 60;
    const { docs, records, seenMarks, partitions, pids } = await killAndRestart('idempotent-handler', total);

    expect(docs.map((doc) => doc._id).sort()).to.deep.equal(records.map((record) => record.key).sort());
    for (const doc of docs) expect(doc.count).to.be.greaterThanOrEqual(1);
    // Only a change whose handler finished but whose seen mark was not yet written runs twice.
    const reruns = docs.reduce((sum, doc) => sum + (doc.count - 1), 0);
    expect(reruns).to.be.at.most(partitions * RERUNS_PER_PARTITION);
    expect(seenMarks).to.equal(total);
    expect(new Set(docs.flatMap((doc) => doc.pids))).to.deep.equal(new Set(pids));
  });

  it('handles no change twice in transactional mode (real mongod only: needs transactions)', async function () {
    skipUnless(this, transactions, 'transactions');
    // The killed process leaves up to one open transaction per partition, holding the seen mark of the
    // record in hand: the restarted one meets write conflicts on it until MongoDB reaps that transaction.
    const lifetime = (await transactionLifetimeSeconds(kit.client)) ?? 60;
    const restartWithinMs = 90_000 + openTransactionReapedWithinMs(lifetime);
    this.timeout(60_000 + 60_000 + restartWithinMs + 30_000);
    console.log(
      `      transactionLifetimeLimitSeconds=${lifetime}: waiting up to ${restartWithinMs} ms after the restart`,
    );
    const total = 60;
    const { docs, records, seenMarks } = await killAndRestart('transactional', total, restartWithinMs);

    expect(docs.map((doc) => doc._id).sort()).to.deep.equal(records.map((record) => record.key).sort());
    for (const doc of docs) expect(doc.count, `change ${doc._id}`).to.equal(1);
    expect(seenMarks).to.equal(total);
  });
});
