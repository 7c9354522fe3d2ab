/**
 * Shared steps of the fault scenarios: a relay over several collections, the workload writer, and the
 * independent read-back of every topic that is compared with the writer's log.
 */
import { expect } from 'chai';
import { collectTopic, kafkaClient } from '../support/kafka.js';
import type { RelayTestContext } from '../support/relayFixture.js';
import { chooseSeed, SeededRandom, SEED_ENV } from '../support/random.js';
import { runningRelays } from '../support/relayProcess.js';
import { awaitDelivery, formatReport, type DeliveryReport, type WrittenChange } from '../support/workload.js';

export const COLLECTIONS = ['orders', 'customers', 'stock'];
/** A few thousand changes per scenario: enough to land faults mid-stream, small enough for CI. */
export const CHANGES = Number(process.env.FAULTS_CHANGES ?? 3000);

export function relayEnvFor(
  ctx: RelayTestContext,
  extra: Record<string, string> = {},
): Record<string, string> {
  return ctx.env({ RELAY_WATCH: COLLECTIONS.map((c) => `${ctx.db}.${c}`).join(','), ...extra });
}

/**
 * A scenario's random choices (kill points, outage lengths, the workload's seed) come from here; its seed is
 * printed in its `faults:` line, and TEST_SEED=<seed> replays it.
 */
export function scenarioRandom(): SeededRandom {
  return new SeededRandom(chooseSeed());
}

/** Read every topic independently (fresh group) until nothing is missing, then judge the scenario. */
export async function readBackAndJudge(
  name: string,
  ctx: RelayTestContext,
  log: readonly WrittenChange[],
  extra: Record<string, number>,
  brokers?: string,
  labels: Record<string, string | number> = {},
): Promise<DeliveryReport> {
  const kafka = brokers ? kafkaClient(`faults-${name}`, brokers) : undefined;
  const collectors = await Promise.all(
    COLLECTIONS.map((c) => collectTopic(ctx.topic(c), kafka ? { kafka } : {})),
  );
  try {
    const report = await awaitDelivery(log, () => collectors.flatMap((c) => c.messages));
    console.log(`      ${formatReport(name, report, extra, labels)}`);
    if (report.lost > 0) await explainStall(ctx, collectors.flatMap((c) => c.messages).length);
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.orderViolations, 'per-document order violations').to.equal(0);
    expect(report.conflictingDuplicates, 'duplicates that are not re-publications of one change').to.equal(0);
    expect(report.unexpected, 'records that match no written change').to.equal(0);
    return report;
  } finally {
    await Promise.all(collectors.map((c) => c.stop()));
  }
}

/**
 * When delivery stalls, say where: what the relay's checkpoint says it published (across restarts),
 * what the independent reader holds, and the relay's own view (readiness, in-flight, last log lines).
 */
async function explainStall(ctx: RelayTestContext, readBack: number): Promise<void> {
  const cp = await ctx.readCheckpoint();
  console.log(
    `      stall: read back ${readBack} records; checkpoint ${JSON.stringify({ counts: cp?.counts, token: cp?.token, lease: cp?.lease?.owner })}`,
  );
  for (const relay of runningRelays()) {
    const ready = await fetch(`http://127.0.0.1:${relay.metricsPort}/readyz`).then(
      (r) => r.text(),
      (e: Error) => e.message,
    );
    const metrics = await relay.metrics().catch(() => '');
    const key = metrics
      .split('\n')
      .filter((l) =>
        /^mongo_kafka_relay_(in_flight|events_total|publish_errors|stream_restarts|checkpoint_writes)/.test(
          l,
        ),
      );
    console.log(`      relay pid ${relay.child.pid}: readyz ${ready}\n        ${key.join('\n        ')}`);
    console.log(`      last log lines:\n        ${relay.stdout.slice(-8).join('\n        ')}`);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * For scenarios without a generator of their own (consumer-kill): one seeded generator for the run, whose seed
 * is printed once (`faults: random seed=<n>`) so a run can be replayed with TEST_SEED.
 */
let shared: SeededRandom | undefined;
export const randomBetween = (min: number, max: number): number => {
  if (!shared) {
    shared = scenarioRandom();
    console.log(`      faults: random seed=${shared.seed} (${SEED_ENV}=${shared.seed} replays it)`);
  }
  return shared.between(min, max);
};
