/**
 * (f) The consumer helper's throughput: records/s handled with dedupe (seen lookup + mark write per
 * record, offsets committed) by `createChangeConsumer` in its default mode with a trivial handler, against
 * a raw kafkajs consumer reading the same topic in the same run (target: helper >= 0.5 x raw). Also the
 * batch-handler variant.
 *
 * Records are shaped as the relay publishes them (key = change ID, relaxed Extended JSON value, the
 * contract's headers) and written to a 6-partition topic before any consumer starts; each consumer is a
 * fresh group reading it from the beginning. A rate counts from the moment the consumer joined its group
 * (kafkajs `run()` resolved; for the helper `start()`) to the moment it had all N (for the helper: handled
 * and their seen marks written), so connections and group joins are excluded. Each figure is the better
 * of two runs.
 *
 * In the full bench the helper is the compiled build (as shipped, like the relay's runs; BENCH_RELAY_TSX=1:
 * the sources); standalone it is the sources through tsx:
 * KAFKA_BROKERS=... MONGODB_URI=... npx tsx bench/consumerRun.ts [N]
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';

import { Kafka, logLevel, type Message } from 'kafkajs';
import { BSON, MongoClient, Timestamp } from 'mongodb';
import { pino } from 'pino';
import { Registry } from 'prom-client';

import { RecordHeader, contentTypeFor } from '../src/contract/record.js';
import * as consumerSources from '../src/consumer/index.js';
import { SeenStore, type SeenDocument } from '../src/consumer/seenStore.js';
import { makeDoc, round, uniqueName } from './support.js';

const PARTITIONS = 6;
export const CONSUMER_TARGET_RATIO = 0.5;

/** The consumer helper's module: the sources (standalone runs) or the compiled build (the full bench). */
export type ConsumerModule = Pick<typeof consumerSources, 'createChangeConsumer'>;

const { ConsumerMetricName } = consumerSources;

export interface ConsumerBenchContext {
  readonly client: MongoClient;
  readonly brokers: string;
  /** Default: the sources, through tsx. */
  readonly consumerModule?: ConsumerModule;
}

export interface ConsumerRunFigures {
  /** Records per second, from joining the group to the last record done. */
  readonly rate: number;
  /** CPU time of the bench process per record during the run (µs). */
  readonly cpuUsPerRecord: number;
}

export interface ConsumerBenchResult {
  readonly n: number;
  readonly size: number;
  readonly partitions: number;
  readonly raw: ConsumerRunFigures;
  /** Default mode (idempotent-handler), per-record trivial handler, default options. */
  readonly helper: ConsumerRunFigures;
  /** The same with a trivial batch handler. */
  readonly helperBatch: ConsumerRunFigures;
  /**
   * What the seen store alone allows on this MongoDB: n change IDs looked up ($in) and marked (bulk
   * insert) in chunks of 1000, four chunks at a time (as the helper's default partitionsConcurrently),
   * no Kafka. The helper cannot be faster than this.
   */
  readonly seenStoreFloor: { readonly rate: number; readonly msPerChunk: number };
  /** helper.rate / raw.rate. */
  readonly ratio: number;
  readonly batchRatio: number;
  readonly loadAvg: string;
}

/** A change event as the relay publishes it, for document `seq`. */
function relayRecord(seq: number, size: number, seconds: number): Message {
  const doc = makeDoc(size, seq);
  const clusterTime = new Timestamp({ t: seconds + Math.floor(seq / 1000), i: (seq % 1000) + 1 });
  const changeId =
    `82${clusterTime.t.toString(16).padStart(8, '0')}${clusterTime.i.toString(16).padStart(8, '0')}2B022C0100296E5A1004${seq.toString(16).padStart(32, '0')}46645F6964002B0204`.toUpperCase();
  const event = {
    _id: { _data: changeId },
    operationType: 'insert',
    clusterTime,
    wallTime: new Date(),
    fullDocument: doc,
    ns: { db: 'bench', coll: 'orders' },
    documentKey: { _id: doc._id },
  };
  return {
    key: changeId,
    value: BSON.EJSON.stringify(event, { relaxed: true }),
    headers: {
      [RecordHeader.changeId]: changeId,
      [RecordHeader.operationType]: 'insert',
      [RecordHeader.ns]: 'bench.orders',
      [RecordHeader.documentKey]: BSON.EJSON.stringify({ _id: doc._id }, { relaxed: false }),
      [RecordHeader.clusterTime]: `${clusterTime.t}.${clusterTime.i}`,
      [RecordHeader.contentType]: contentTypeFor('relaxed'),
    },
  };
}

export async function prepareTopic(kafka: Kafka, n: number, size: number): Promise<string> {
  const topic = uniqueName('bench-consumer').replace(/_/g, '-');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: PARTITIONS },
        { topic: `${topic}.dlq`, numPartitions: PARTITIONS },
      ],
    });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer();
  await producer.connect();
  try {
    const seconds = Math.floor(Date.now() / 1000);
    for (let start = 0; start < n; start += 1_000) {
      const messages = Array.from({ length: Math.min(1_000, n - start) }, (_, i) =>
        relayRecord(start + i, size, seconds),
      );
      await producer.send({ topic, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
  return topic;
}

function cpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Waits until `done()` or `timeoutMs`; polls every 5 ms. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A raw kafkajs consumer (eachBatch, kafkajs defaults) reading all n records. */
async function rawRun(kafka: Kafka, topic: string, n: number): Promise<ConsumerRunFigures> {
  const consumer = kafka.consumer({ groupId: uniqueName('bench-raw') });
  let received = 0;
  let last = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        received += batch.messages.length;
        if (received >= n && last === 0) last = performance.now();
      },
    });
    // run() resolves once the member joined the group: the clock starts there, as for the helper.
    const first = performance.now();
    const cpuAtFirst = cpuUs();
    await until(() => received >= n, 300_000, `the raw consumer to read ${n} records`);
    const cpu = cpuUs() - cpuAtFirst;
    return { rate: Math.round(n / ((last - first) / 1000)), cpuUsPerRecord: round(cpu / n, 1) };
  } finally {
    await consumer.disconnect();
  }
}

/** The helper in its default mode with a trivial (per-record or batch) handler reading all n records. */
async function helperRun(
  { createChangeConsumer }: ConsumerModule,
  kafka: Kafka,
  client: MongoClient,
  topic: string,
  n: number,
  kind: 'record' | 'batch',
): Promise<ConsumerRunFigures> {
  const registry = new Registry();
  const groupId = uniqueName(`bench-helper-${kind}`);
  const trivial = (): void => undefined;
  const seenCollection = uniqueName('seen');
  const common = {
    kafka,
    groupId,
    topics: [topic],
    mongo: { client },
    seen: { db: 'bench', collection: seenCollection, retentionCheck: 'off' as const },
    registry,
    logger: pino({ level: 'warn' }),
  };
  const consumer =
    kind === 'batch'
      ? createChangeConsumer({ ...common, batchHandler: trivial })
      : createChangeConsumer({ ...common, handler: trivial });
  await consumer.start();
  // start() resolves once the member joined the group (after its checks): the clock starts there.
  const first = performance.now();
  const cpuAtFirst = cpuUs();
  try {
    const handled = async (): Promise<number> =>
      ((await registry.getSingleMetric(ConsumerMetricName.handled)?.get())?.values ?? []).reduce(
        (sum, v) => sum + v.value,
        0,
      );
    await until(async () => (await handled()) >= n, 300_000, `the helper to handle ${n} records`);
    const last = performance.now();
    const cpu = cpuUs() - cpuAtFirst;
    return { rate: Math.round(n / ((last - first) / 1000)), cpuUsPerRecord: round(cpu / n, 1) };
  } finally {
    await consumer.stop();
    // The stand-in keeps everything in memory: leave nothing behind.
    await client
      .db('bench')
      .collection(seenCollection)
      .drop()
      .catch(() => undefined);
  }
}

const better = (a: ConsumerRunFigures, b: ConsumerRunFigures): ConsumerRunFigures =>
  a.rate >= b.rate ? a : b;

/** The seen store's own cost: one $in lookup and one bulk mark write per chunk of 1000, 4 streams. */
async function seenStoreFloor(client: MongoClient, n: number): Promise<{ rate: number; msPerChunk: number }> {
  const collection = client.db('bench').collection<SeenDocument>(uniqueName('seen_floor'));
  const store = new SeenStore(collection, 'floor');
  const chunk = 1_000;
  const streams = 4;
  const perStream = Math.ceil(n / chunk / streams);
  const chunkMs: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, stream) => {
      for (let c = 0; c < perStream; c++) {
        const ids = Array.from({ length: chunk }, (_, i) => `82F${stream}x${c}x${i}`);
        const t0 = performance.now();
        await store.findSeen(ids);
        await store.writeMarks(
          ids.map((changeId, i) => ({
            changeId,
            topic: 't',
            partition: stream,
            offset: String(c * chunk + i),
            outcome: 'handled' as const,
          })),
        );
        chunkMs.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await collection.drop().catch(() => undefined);
  return {
    rate: Math.round((streams * perStream * chunk) / seconds),
    msPerChunk: Math.round(chunkMs.reduce((sum, ms) => sum + ms, 0) / chunkMs.length),
  };
}

/** Runs (f): writes the records once, then the raw consumer, the helper and the batch helper, twice each, interleaved. */
export async function consumerBench(
  ctx: ConsumerBenchContext,
  options: { n: number; size: number; log?: (line: string) => void },
): Promise<ConsumerBenchResult> {
  const log = options.log ?? (() => undefined);
  const kafka = new Kafka({
    clientId: 'consumer-bench',
    brokers: ctx.brokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  const topic = await prepareTopic(kafka, options.n, options.size);
  log(`  ${options.n} records of a ${options.size}-B document on ${topic} (${PARTITIONS} partitions)`);
  let raw: ConsumerRunFigures | undefined;
  const helperModule = ctx.consumerModule ?? consumerSources;
  let helper: ConsumerRunFigures | undefined;
  let helperBatch: ConsumerRunFigures | undefined;
  for (let round = 1; round <= 2; round++) {
    const r = await rawRun(kafka, topic, options.n);
    const h = await helperRun(helperModule, kafka, ctx.client, topic, options.n, 'record');
    const b = await helperRun(helperModule, kafka, ctx.client, topic, options.n, 'batch');
    log(`  round ${round}: raw ${r.rate}/s, helper ${h.rate}/s, helper (batch handler) ${b.rate}/s`);
    raw = raw ? better(raw, r) : r;
    helper = helper ? better(helper, h) : h;
    helperBatch = helperBatch ? better(helperBatch, b) : b;
  }
  const floor = await seenStoreFloor(ctx.client, options.n);
  log(
    `  seen store alone: ${floor.rate}/s (${floor.msPerChunk} ms per chunk of 1000: $in lookup + bulk insert)`,
  );
  return {
    n: options.n,
    size: options.size,
    partitions: PARTITIONS,
    raw: raw!,
    helper: helper!,
    helperBatch: helperBatch!,
    seenStoreFloor: floor,
    ratio: round(helper!.rate / raw!.rate, 2),
    batchRatio: round(helperBatch!.rate / raw!.rate, 2),
    loadAvg: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
  };
}

/** Lines for the bench report. */
export function renderConsumerBench(r: ConsumerBenchResult | undefined): string[] {
  if (!r) return [];
  const f = (v: number): string => v.toLocaleString('en-US');
  return [
    '',
    `(f) Consumer helper, ${f(r.n)} records (${r.size}-B documents, ${r.partitions} partitions), records/s (CPU µs/record of the bench process)`,
    `    raw kafkajs consumer (eachBatch, no work)          ${f(r.raw.rate)} (${r.raw.cpuUsPerRecord})`,
    `    helper, default mode, trivial handler, dedupe      ${f(r.helper.rate)} (${r.helper.cpuUsPerRecord})  = ${r.ratio} x raw (target >= ${CONSUMER_TARGET_RATIO})`,
    `    helper, trivial batch handler                      ${f(r.helperBatch.rate)} (${r.helperBatch.cpuUsPerRecord})  = ${r.batchRatio} x raw`,
    `    seen store alone ($in + bulk insert per 1000, 4 at a time, no Kafka): ${f(r.seenStoreFloor.rate)}/s, ${r.seenStoreFloor.msPerChunk} ms per chunk`,
    `    load average after the runs: ${r.loadAvg}`,
  ];
}

/** The target row for the bench's target table. */
export function consumerTarget(r: ConsumerBenchResult): {
  name: string;
  target: string;
  value: number;
  met: boolean;
} {
  return {
    name: 'consumer helper (default mode) ÷ raw kafkajs consumer',
    target: `≥ ${CONSUMER_TARGET_RATIO}`,
    value: r.ratio,
    met: r.ratio >= CONSUMER_TARGET_RATIO,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const brokers = process.env.KAFKA_BROKERS;
  const mongoUri = process.env.MONGODB_URI;
  if (!brokers || !mongoUri) {
    process.stderr.write(
      'set KAFKA_BROKERS and MONGODB_URI (e.g. npm run services:up; set -a; . .services/env)\n',
    );
    process.exit(2);
  }
  const client = new MongoClient(mongoUri);
  await client.connect();
  try {
    const loadAtStart = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    const result = await consumerBench(
      { client, brokers },
      { n: Number(process.argv[2] ?? 20_000), size: 200, log: (line) => console.log(line) },
    );
    console.log(renderConsumerBench(result).join('\n'));
    console.log(`    load average at start: ${loadAtStart}`);
    console.log(JSON.stringify(result));
  } finally {
    await client.close();
  }
  process.exit(0);
}
