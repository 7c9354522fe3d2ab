import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ConsumerMetricName, createChangeConsumer } from './src/consumer/index.js';
const topic = process.argv[2]!;
const n = Number(process.argv[3]);
const opts = JSON.parse(process.argv[4] ?? '{}');
const kafka = new Kafka({ brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
const client = new MongoClient(process.env.MONGODB_URI!);
await client.connect();
const registry = new Registry();
let first = 0;
const c = createChangeConsumer({
  kafka,
  groupId: `dbg-${Date.now()}`,
  topics: [topic],
  mongo: { client },
  seen: { db: 'bench', collection: `seen_dbg_${Date.now()}`, retentionCheck: 'off' },
  registry,
  logger: pino({ level: 'warn' }),
  handler: () => {
    if (!first) first = performance.now();
  },
  ...opts,
});
await c.start();
for (;;) {
  await new Promise((r) => setTimeout(r, 20));
  const h = ((await registry.getSingleMetric(ConsumerMetricName.handled)?.get())?.values ?? []).reduce(
    (s, v) => s + v.value,
    0,
  );
  if (h >= n) break;
}
console.log(JSON.stringify(opts), 'rate', Math.round(n / ((performance.now() - first) / 1000)));
await c.stop();
await client.close();
process.exit(0);
