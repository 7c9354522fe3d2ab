/**
 * A/B of two relay builds on the same services: `npx tsx bench/compare.ts <dir A> <dir B> [rounds]`
 * runs the default-mode backlog (phase (c), continuous) from checkout A and from checkout B, alternating,
 * `rounds` times (default 2) at 200 B and 4 KB, and prints changes/s, relay CPU µs per change and RSS
 * peak per run and the B ÷ A ratios of the medians. Uses KAFKA_BROKERS and MONGODB_URI (e.g.
 * `npm run services:up`, then `set -a; . .services/env; set +a`). A checkout needs its dependencies
 * (a `node_modules` symlink to this one's will do). Alternating on the same services is what makes
 * a small difference visible on a shared two-core machine; the full bench runs one build.
 * COMPARE_A_ENV / COMPARE_B_ENV (JSON objects) add relay environment to A's or B's runs (also with
 * the same checkout twice: e.g. `{"NODE_OPTIONS": "--max-semi-space-size=4"}`).
 */
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { buildRelay, relayBacklogRun } from './relayRun.js';
import { round } from './support.js';

const [dirA, dirB, roundsArg] = process.argv.slice(2);
if (!dirA || !dirB || !process.env.KAFKA_BROKERS || !process.env.MONGODB_URI) {
  console.error(
    'usage: KAFKA_BROKERS=… MONGODB_URI=… npx tsx bench/compare.ts <checkout A> <checkout B> [rounds]',
  );
  process.exit(2);
}
const rounds = Number(roundsArg ?? 2);
const roots = { A: path.resolve(dirA), B: path.resolve(dirB) };
const extraEnv: Record<string, Record<string, string>> = {
  A: JSON.parse(process.env.COMPARE_A_ENV ?? '{}') as Record<string, string>,
  B: JSON.parse(process.env.COMPARE_B_ENV ?? '{}') as Record<string, string>,
};

const client = new MongoClient(process.env.MONGODB_URI);
await client.connect();
const ctx = { client, mongoUri: process.env.MONGODB_URI, brokers: process.env.KAFKA_BROKERS };

for (const root of Object.values(roots)) {
  process.env.BENCH_RELAY_ROOT = root;
  await buildRelay();
}

type Figures = { rate: number; cpu: number; rss: number; mainHeapMB: number };
const runs: Record<string, Figures[]> = {};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

for (const [size, n] of [
  [200, 20000],
  [4096, 8000],
] as const) {
  for (let r = 0; r < rounds; r++) {
    for (const [name, root] of r % 2 ? Object.entries(roots).reverse() : Object.entries(roots)) {
      process.env.BENCH_RELAY_ROOT = root;
      const result = await relayBacklogRun(ctx, { mode: 'continuous', size, n, extra: extraEnv[name] });
      const figures = {
        rate: Math.round(result.rate),
        cpu: round(result.cpuUsPerEvent),
        rss: result.rss.peakMB,
        mainHeapMB: result.rss.atPeak?.heapTotalMB ?? NaN,
      };
      (runs[`${name} ${size}`] ??= []).push(figures);
      console.log(
        `${name} ${size} B round ${r + 1}: ${JSON.stringify(figures)}${result.errors.length ? ` errors: ${result.errors.length}` : ''}`,
      );
      // The first error lines say whether a slow run was the relay's fault or the services'.
      for (const line of result.errors.slice(0, 2)) console.log(`    ${line}`);
    }
  }
  const a = runs[`A ${size}`]!;
  const b = runs[`B ${size}`]!;
  const ratio = (k: keyof Figures) => round(median(b.map((f) => f[k])) / median(a.map((f) => f[k])), 2);
  console.log(
    `${size} B, B ÷ A (medians): changes/s ${ratio('rate')}, CPU µs/change ${ratio('cpu')}, RSS peak ${ratio('rss')}`,
  );
}
await client.close();
process.exit(0);
