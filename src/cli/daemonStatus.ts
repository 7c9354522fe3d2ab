/** What `status` asks a running daemon: /readyz and a few series of /metrics. */
import { MetricName } from '../metrics/names.js';

export interface DaemonStatus {
  url: string;
  reachable: boolean;
  ready: boolean | null;
  readiness: Record<string, unknown> | null;
  metrics: Record<string, number> | null;
  error?: string;
}

const KEY_SERIES = [
  MetricName.eventsTotal,
  MetricName.sourceLagSeconds,
  MetricName.inFlightEvents,
  MetricName.checkpointAgeSeconds,
  MetricName.deadLetterTotal,
  MetricName.publishErrorsTotal,
  MetricName.streamRestartsTotal,
];

export async function fetchDaemonStatus(url: string): Promise<DaemonStatus> {
  try {
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) });
    const readiness = (await ready.json()) as Record<string, unknown>;
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    return { url, reachable: true, ready: ready.status === 200, readiness, metrics: sumSeries(text) };
  } catch (error) {
    return {
      url,
      reachable: false,
      ready: null,
      readiness: null,
      metrics: null,
      error: (error as Error).message,
    };
  }
}

/** Sum every sample of each key series (labels summed away) from the Prometheus text format. */
export function sumSeries(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const name = line.split(/[{ ]/, 1)[0] ?? '';
    if (!(KEY_SERIES as string[]).includes(name)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (!Number.isNaN(value)) out[name] = (out[name] ?? 0) + value;
  }
  return out;
}

export function printDaemonStatus(s: DaemonStatus): void {
  if (!s.reachable) {
    process.stdout.write(`daemon       not reachable at ${s.url} (${s.error ?? 'no answer'})\n`);
    return;
  }
  const lines = [
    `daemon       ${s.ready ? 'ready' : 'NOT ready'} at ${s.url} ${JSON.stringify(s.readiness)}`,
  ];
  for (const [name, value] of Object.entries(s.metrics ?? {})) lines.push(`  ${name} ${value}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
