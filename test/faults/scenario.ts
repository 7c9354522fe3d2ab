/**
 * Shared steps of the fault scenarios: a relay over several collections, the workload writer, and the
 * independent read-back of every topic that is compared with the writer's log.
 */
import { expect } from 'chai';
import { collectTopic, kafkaClient } from '../support/kafka.js';
import type { RelayTestContext } from '../support/relayFixture.js';
import {
  verifyDelivery,
  formatReport,
  type DeliveryReport,
  type WrittenChange,
} from '../support/workload.js';
import { waitFor } from '../support/wait.js';

export const COLLECTIONS = ['orders', 'customers', 'stock'];
/** A few thousand changes per scenario: enough to land faults mid-stream, small enough for CI. */
export const CHANGES = Number(process.env.FAULTS_CHANGES ?? 3000);

export function relayEnvFor(
  ctx: RelayTestContext,
  extra: Record<string, string> = {},
): Record<string, string> {
  return ctx.env({ RELAY_WATCH: COLLECTIONS.map((c) => `${ctx.db}.${c}`).join(','), ...extra });
}

/** Read every topic independently (fresh group) until nothing is missing, then judge the scenario. */
export async function readBackAndJudge(
  name: string,
  ctx: RelayTestContext,
  log: readonly WrittenChange[],
  extra: Record<string, number>,
  brokers?: string,
): Promise<DeliveryReport> {
  const kafka = brokers ? kafkaClient(`faults-${name}`, brokers) : undefined;
  const collectors = await Promise.all(
    COLLECTIONS.map((c) => collectTopic(ctx.topic(c), kafka ? { kafka } : {})),
  );
  try {
    let report = verifyDelivery(log, []);
    try {
      report = await waitFor(
        () => {
          report = verifyDelivery(
            log,
            collectors.flatMap((c) => c.messages),
          );
          return report.lost === 0 && report;
        },
        { timeoutMs: 180_000, intervalMs: 1000, message: () => formatReport(name, report, extra) },
      );
    } finally {
      console.log(`      ${formatReport(name, report, extra)}`);
    }
    expect(report.lost, `lost changes, e.g. ${report.lostExamples.join(', ')}`).to.equal(0);
    expect(report.orderViolations, 'per-document order violations').to.equal(0);
    expect(report.conflictingDuplicates, 'duplicates that are not re-publications of one change').to.equal(0);
    expect(report.unexpected, 'records that match no written change').to.equal(0);
    return report;
  } finally {
    await Promise.all(collectors.map((c) => c.stop()));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const randomBetween = (min: number, max: number): number => min + Math.random() * (max - min);
