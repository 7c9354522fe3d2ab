/**
 * `npm run bench -- --anchors` (issue 21): the relay and Debezium's MongoDB connector on Kafka Connect,
 * one after the other on the same backlog shapes, broker, MongoDB and topic partitions, in one run.
 */
import type { Kafka } from 'kafkajs';
import { relayBacklogRun, type BenchContext, type Workload } from '../relayRun.js';
import { errorText, round } from '../support.js';
import {
  CONNECT_VERSION,
  DEBEZIUM_VERSION,
  ensureConnectJars,
} from '../../scripts/kafka-connect/connectWorker.js';
import { debeziumBacklogRun, type AnchorRunResult } from './debeziumRun.js';

export interface SideBySideRow {
  workload: Workload;
  size: number;
  n: number;
  relay?: { rate: number; cpuUsPerChange: number; rssPeakMB: number; startupS: number };
  debezium?: AnchorRunResult;
  /** relay ÷ Debezium: changes/s (target ≥ 2), CPU µs per change (≤ 0.5), RSS peak (≤ 0.5). */
  ratios?: { rate: number; cpu: number; rss: number };
  errors: string[];
}

export const ANCHOR_WORKLOADS: { workload: Workload; size: number; n: number }[] = [
  { workload: 'insert', size: 200, n: 20000 },
  { workload: 'insert', size: 4096, n: 8000 },
  { workload: 'insert-update', size: 1100, n: 50000 },
];

export async function sideBySide(
  ctx: BenchContext,
  kafka: Kafka,
  log: (line: string) => void,
  workloads = ANCHOR_WORKLOADS,
): Promise<{ versions: string; rows: SideBySideRow[] }> {
  const libs = await ensureConnectJars(log);
  const rows: SideBySideRow[] = [];
  for (const w of workloads) {
    const row: SideBySideRow = { ...w, errors: [] };
    log(`anchors: relay, ${w.workload} ${w.size} B × ${w.n} ...`);
    try {
      const r = await relayBacklogRun(ctx, { mode: 'continuous', ...w, timeoutMs: 300_000 });
      row.relay = {
        rate: r.rate,
        cpuUsPerChange: r.cpuUsPerEvent,
        rssPeakMB: r.rss.peakMB,
        startupS: r.startupS,
      };
    } catch (error) {
      row.errors.push(`relay: ${errorText(error)}`);
    }
    log(`anchors: Debezium, ${w.workload} ${w.size} B × ${w.n} ...`);
    try {
      row.debezium = await debeziumBacklogRun(ctx, kafka, libs, { ...w, timeoutMs: 300_000 });
    } catch (error) {
      row.errors.push(`debezium: ${errorText(error)}`);
    }
    if (row.relay && row.debezium)
      row.ratios = {
        rate: round(row.relay.rate / row.debezium.rate, 2),
        cpu: round(row.relay.cpuUsPerChange / row.debezium.cpuUsPerChange, 2),
        rss: round(row.relay.rssPeakMB / row.debezium.rssPeakMB, 2),
      };
    rows.push(row);
  }
  return { versions: `Kafka Connect ${CONNECT_VERSION} standalone + Debezium ${DEBEZIUM_VERSION}`, rows };
}

export function renderSideBySide(s: { versions: string; rows: SideBySideRow[] }): string {
  const out = [`Side by side (${s.versions}); ratios are relay ÷ Debezium`];
  out.push('workload                 system     changes/s  CPU µs/change  RSS peak MB  start→first s');
  for (const r of s.rows) {
    const name = `${r.workload} ${r.size} B × ${r.n}`.padEnd(24);
    if (r.relay)
      out.push(
        `${name} relay    ${String(r.relay.rate).padStart(11)}  ${String(r.relay.cpuUsPerChange).padStart(13)}  ${String(r.relay.rssPeakMB).padStart(11)}  ${String(r.relay.startupS).padStart(13)}`,
      );
    if (r.debezium)
      out.push(
        `${name} debezium ${String(r.debezium.rate).padStart(11)}  ${String(r.debezium.cpuUsPerChange).padStart(13)}  ${String(r.debezium.rssPeakMB).padStart(11)}  ${String(r.debezium.startupS).padStart(13)}`,
      );
    if (r.ratios)
      out.push(
        `${name} ratio    ${String(r.ratios.rate).padStart(11)}  ${String(r.ratios.cpu).padStart(13)}  ${String(r.ratios.rss).padStart(11)}`,
      );
    for (const e of r.errors) out.push(`${name} FAILED: ${e}`);
  }
  return out.join('\n');
}
