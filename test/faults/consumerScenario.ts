/**
 * consumer-kill: the relay publishes a workload while the consumer helper (a child process whose
 * handler counts each call per change ID in MongoDB) is SIGKILLed and restarted. Every change must be
 * handled; with transactions (where the local MongoDB has them) none twice, otherwise at most the
 * records whose seen marks were not written yet at each kill run twice (the documented
 * idempotent-handler guarantee: per partition, those handled within one flush interval plus the one in hand).
 *
 * On a real mongod a SIGKILL can leave a transaction open that holds the seen mark of the record in
 * hand; the next process meets write conflicts on it until mongod reaps the transaction
 * (transactionLifetimeLimitSeconds plus the reaper's period), so the waits are sized from that limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { collectTopic, createTopic, kafkaClient } from '../support/kafka.js';
import type { RelayTestContext } from '../support/relayFixture.js';
import { REPO_ROOT, startRelayReady } from '../support/relayProcess.js';
import { getServices } from '../support/services.js';
import {
  openTransactionReapedWithinMs,
  transactionLifetimeSeconds,
} from '../integration/consumer/helpers.js';
import { waitFor } from '../support/wait.js';
import { Workload } from '../support/workload.js';
import { CHANGES, sleep, randomBetween } from './scenario.js';

const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/consumer/run-consumer.ts');
const PARTITIONS_IN_HAND = 2; // run-consumer handles two partitions at a time
const HANDLER_DELAY_MS = 2;
const SEEN_FLUSH_INTERVAL_MS = 100;
const RERUNS_PER_PARTITION_PER_KILL = Math.ceil(SEEN_FLUSH_INTERVAL_MS / HANDLER_DELAY_MS) + 1;

export interface ConsumerScenarioReport {
  changes: number;
  skipped: number;
  handledTwice: number;
  kills: number;
}

function startConsumer(ctx: RelayTestContext, mode: string): { child: ChildProcess; started: Promise<void> } {
  const s = getServices();
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KAFKA_BROKERS: s.brokers,
      MONGODB_URI: s.mongoUri,
      CONSUMER_TOPIC: ctx.topic('orders'),
      CONSUMER_GROUP: `${ctx.checkpointId}-group`,
      CONSUMER_MODE: mode,
      CONSUMER_DB: ctx.db,
      SEEN_COLLECTION: 'seen',
      HANDLED_COLLECTION: 'handled',
      HANDLER_DELAY_MS: String(HANDLER_DELAY_MS),
      SEEN_FLUSH_INTERVAL_MS: String(SEEN_FLUSH_INTERVAL_MS),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('"started"') && resolve());
    child.once('exit', (code) => reject(new Error(`consumer exited early with ${code}`)));
  });
  return { child, started };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function runConsumerScenario(
  ctx: RelayTestContext,
  transactions: boolean,
): Promise<ConsumerScenarioReport> {
  const mode = transactions ? 'transactional' : 'idempotent-handler';
  await startRelayReady(ctx.env({ RELAY_WATCH: `${ctx.db}.orders` }));
  // The consumer subscribes before the relay's first record would create the topic; the helper
  // refuses to start without the dead-letter topic.
  await createTopic(kafkaClient(), ctx.topic('orders'), 3);
  await createTopic(kafkaClient(), `${ctx.topic('orders')}.dlq`, 3);
  // Each kill may leave a transaction open that blocks the next process until mongod reaps it.
  const reapMs = transactions
    ? openTransactionReapedWithinMs((await transactionLifetimeSeconds(ctx.mongo)) ?? 60)
    : 0;
  let consumer = startConsumer(ctx, mode);
  await consumer.started;
  let kills = 0;
  const target = Math.min(CHANGES, 2000);
  const workload: Workload = new Workload(ctx.mongo, {
    db: ctx.db,
    collections: ['orders'],
    documents: 60,
    changes: 50 * target,
    pauseMs: 2,
    seed: 5,
    stop: (): boolean => kills >= 3 && workload.log.length >= target,
  });
  const done = workload.run();
  while (kills < 3) {
    await sleep(randomBetween(1000, 2500));
    await kill(consumer.child);
    kills += 1;
    consumer = startConsumer(ctx, mode);
    await consumer.started;
  }
  await done;
  const collector = await collectTopic(ctx.topic('orders'));
  try {
    const changes = workload.log.length;
    await collector.waitForCount(changes, 180_000);
    const ids = new Set(collector.messages.map((m) => m.key!));
    const handled = ctx.mongo.db(ctx.db).collection<{ _id: string; count: number }>('handled');
    let counts = new Map<string, number>();
    await waitFor(
      async () => {
        counts = new Map((await handled.find().toArray()).map((d) => [d._id, d.count]));
        return [...ids].every((id) => counts.has(id));
      },
      {
        timeoutMs: 180_000 + kills * reapMs,
        intervalMs: 1000,
        message: () => `every change handled (${counts.size}/${ids.size})`,
      },
    );
    const report: ConsumerScenarioReport = {
      changes: ids.size,
      skipped: [...ids].filter((id) => !counts.has(id)).length,
      handledTwice: [...counts.values()].filter((c) => c > 1).length,
      kills,
    };
    console.log(
      `      faults: consumer-kill mode=${mode} changes=${report.changes} lost=${report.skipped} handled_twice=${report.handledTwice} crashes=${kills}`,
    );
    if (transactions) expect(report.handledTwice, 'transactional mode handles each change once').to.equal(0);
    else
      expect(report.handledTwice).to.be.at.most(kills * PARTITIONS_IN_HAND * RERUNS_PER_PARTITION_PER_KILL);
    return report;
  } finally {
    await collector.stop();
    await kill(consumer.child);
  }
}
