/**
 * `npm run dev`: the relay against local services, with a demo writer and a reader, so a newcomer sees
 * MongoDB changes arrive in Kafka. Starts the services if needed (`npm run services:up`), runs the relay
 * watching `demo.orders`, writes a change every half second, and prints each Kafka record it reads.
 * Ctrl-C stops the relay gracefully; the services stay up (`npm run services:down` stops them).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { ENV_FILE, REPO_ROOT } from './services/state.js';

const up = spawnSync(
  process.execPath,
  ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/services/cli.ts'), 'up'],
  {
    stdio: 'inherit',
    cwd: REPO_ROOT,
  },
);
if (up.status !== 0) process.exit(up.status ?? 1);

const services: Record<string, string> = {};
for (const line of readFileSync(ENV_FILE, 'utf8').split('\n')) {
  const m = /^([A-Z_]+)=(.*)$/.exec(line);
  if (m) services[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
}
const env = {
  ...process.env,
  MONGODB_URI: services.MONGODB_URI!,
  KAFKA_BROKERS: services.KAFKA_BROKERS!,
  RELAY_WATCH: process.env.RELAY_WATCH ?? 'demo.orders',
  RELAY_CHECKPOINT_ID: process.env.RELAY_CHECKPOINT_ID ?? 'demo',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
};

const relay = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), 'start'], {
  env,
  cwd: REPO_ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
  // Its own process group: Ctrl-C reaches only this script, which then stops the relay with one SIGTERM.
  detached: true,
});
process.on('exit', () => relay.kill('SIGKILL'));
relay.stdout.on('data', (d: Buffer) => {
  for (const line of d.toString().split('\n').filter(Boolean)) {
    try {
      const l = JSON.parse(line) as { msg: string; level: number };
      console.log(`[relay] ${l.level >= 50 ? 'ERROR ' : l.level >= 40 ? 'WARN ' : ''}${l.msg}`);
    } catch {
      console.log(`[relay] ${line}`);
    }
  }
});

const mongo = new MongoClient(env.MONGODB_URI);
await mongo.connect();
const orders = mongo.db('demo').collection<{ _id: number; status: string; total: number }>('orders');
let n = 0;
const writer = setInterval(() => {
  n += 1;
  const id = n % 5;
  const write =
    n % 7 === 0
      ? orders.deleteOne({ _id: id })
      : orders.updateOne(
          { _id: id },
          { $set: { status: n % 2 ? 'paid' : 'new', total: n * 10 } },
          { upsert: true },
        );
  write.catch((e: unknown) => console.error(`[writer] ${(e as Error).message}`));
}, 500);

const kafka = new Kafka({
  brokers: env.KAFKA_BROKERS.split(','),
  clientId: 'dev-reader',
  logLevel: logLevel.NOTHING,
});
// The relay creates its topic on the first change; create it up front so the reader can subscribe.
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({
  topics: [{ topic: 'mongo.demo.orders', numPartitions: 6 }],
  waitForLeaders: true,
});
await admin.disconnect();
const reader = kafka.consumer({ groupId: `dev-reader-${Date.now()}`, maxWaitTimeInMs: 200 });
await reader.connect();
await reader.subscribe({ topics: ['mongo.demo.orders'], fromBeginning: false });
await reader.run({
  eachMessage: async ({ topic, partition, message }) => {
    const h = (k: string) => message.headers?.[k]?.toString() ?? '';
    console.log(
      `[kafka] ${topic}[${partition}]@${message.offset} ${h('operation-type')} ${h('document-key')} key=${message.key?.toString().slice(0, 24)}…`,
    );
  },
});
console.log('[dev] writing a change to demo.orders every 500 ms; Ctrl-C to stop');

process.once('SIGINT', () => {
  clearInterval(writer);
  relay.kill('SIGTERM');
  relay.once('exit', (code) => {
    void Promise.allSettled([reader.disconnect(), mongo.close()]).then(() => {
      console.log(`[dev] relay stopped (exit ${code}); services still running: npm run services:down`);
      process.exit(0);
    });
  });
});
