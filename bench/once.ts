/**
 * One relay backlog run against running servers, for experiments between full bench runs:
 *
 *   set -a; . .services/env; set +a
 *   npx tsx bench/once.ts [mode] [size] [n] [--profile] [--updates] [RELAY_X=value ...]
 *
 * Prints the rate, the relay's CPU µs per event (the load-independent figure to compare builds by),
 * RSS, and with --profile the CPU profile summary of the measured window. Nothing is written to
 * bench/results/.
 */
import { MongoClient } from 'mongodb';
import { formatProfile, profiledBacklogRun } from './profile.js';
import { buildRelay, relayBacklogRun, type CheckpointMode } from './relayRun.js';
import { runCleanups } from './support.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--') && !a.includes('='));
const extra = Object.fromEntries(
  args.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
);
const workload = args.includes('--updates') ? ('insert-update' as const) : ('insert' as const);
const mode = (positional[0] ?? 'continuous') as CheckpointMode;
const size = Number(positional[1] ?? 200);
const n = Number(positional[2] ?? 20000);
const mongoUri = process.env.MONGODB_URI;
const brokers = process.env.KAFKA_BROKERS;
if (!mongoUri || !brokers) {
  console.error('set MONGODB_URI and KAFKA_BROKERS (e.g. set -a; . .services/env; set +a)');
  process.exit(2);
}
await buildRelay();
const client = new MongoClient(mongoUri);
await client.connect();
try {
  const ctx = {
    client,
    mongoUri,
    brokers,
    kafkaPid: Number(process.env.BENCH_KAFKA_PID) || undefined,
    mongoPid: Number(process.env.BENCH_MONGO_PID) || undefined,
  };
  if (args.includes('--profile')) {
    const { run, summaries } = await profiledBacklogRun(ctx, { mode, size, n, extra, workload });
    const { samples: _s, ...rest } = run;
    console.log(JSON.stringify(rest));
    for (const { thread, summary } of summaries) console.log(`[${thread}] ${formatProfile(summary)}`);
  } else {
    const { samples: _s, ...rest } = await relayBacklogRun(ctx, { mode, size, n, extra, workload });
    console.log(JSON.stringify(rest));
  }
} finally {
  await client.close();
  await runCleanups();
}
