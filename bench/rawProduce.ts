/**
 * (b) Raw kafkajs producer rate for the relay's records: the change events read in (a), serialized by the
 * relay's own toRecord() (EJSON value, change-ID key, headers, partition key) before timing starts, sent
 * as the relay's sink sends them: an idempotent producer, acks=all, one request in flight, the relay's
 * murmur2 partitioner, each request as large as the relay's batched mode allows (1000 records or 900 KB).
 * Two full-size requests are sent first (untimed warm-up). It is the ceiling of what the sink can do with
 * those records on this broker.
 *
 * Also: the round trip of a one-record request, the Kafka part of strict mode's per-event cost.
 */
import type { Kafka, Message } from 'kafkajs';
import type { ChangeStreamDocument } from 'mongodb';
import { toRecord, type OutboundRecord } from '../src/pipeline/toRecord.js';
import { TopicRouter } from '../src/pipeline/topicRouter.js';
import { partitionFor } from '../src/pipeline/murmur2.js';
import { createTopic, RELAY_DEFAULT_PARTITIONS } from './kafkaTools.js';
import { BENCH_DB, cpuUs, distribution, round, type Distribution } from './support.js';

/** The relay's batched-mode request limits (KafkaSink maxBatchRecords / KAFKA_MAX_BATCH_BYTES). */
export const RELAY_BATCH_RECORDS = 1000;
export const RELAY_BATCH_BYTES = 900_000;

export interface RawProduceResult {
  size: number;
  n: number;
  seconds: number;
  rate: number;
  requests: number;
  /** Mean key + value + headers bytes of one record. */
  recordBytes: number;
  mbPerSecond: number;
  /** CPU time of this (the producing) process per record while sending, µs. */
  cpuUsPerEvent: number;
  /** CPU time of the relay's toRecord() per event (done before timing), µs. */
  serializeUsPerEvent: number;
}

function relayRecords(events: ChangeStreamDocument[]): OutboundRecord[] {
  const first = events[0] as { ns?: { db: string; coll: string } } | undefined;
  if (!first?.ns) throw new Error('no events to produce');
  const router = new TopicRouter('mongo.{db}.{coll}', {
    level: 'collection',
    db: BENCH_DB,
    coll: first.ns.coll,
  });
  return events.map((e) =>
    toRecord(e, e._id as { _data: string }, router, { format: 'relaxed', partitionBy: 'document' }),
  );
}

/** The relay's partitioner: murmur2 of the partition key (namespace + document key). */
function relayProducer(kafka: Kafka, keys: WeakMap<Message, Buffer>) {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    createPartitioner:
      () =>
      ({ partitionMetadata, message }) =>
        partitionFor(keys.get(message) ?? Buffer.alloc(0), partitionMetadata.length),
  });
}

function toMessages(records: OutboundRecord[], keys: WeakMap<Message, Buffer>): Message[] {
  return records.map((r) => {
    const m: Message = { key: r.key, value: r.value, headers: r.headers };
    keys.set(m, r.partitionKey);
    return m;
  });
}

export async function rawProduce(
  kafka: Kafka,
  size: number,
  events: ChangeStreamDocument[],
): Promise<RawProduceResult> {
  relayRecords(events); // warm-up of the serializer; the second pass is measured
  const s0 = cpuUs();
  const records = relayRecords(events);
  const serializeUsPerEvent = (cpuUs() - s0) / records.length;
  const topic = records[0]!.topic;
  await createTopic(kafka, topic, RELAY_DEFAULT_PARTITIONS);
  const keys = new WeakMap<Message, Buffer>();
  const messages = toMessages(records, keys);
  // Requests exactly as KafkaSink.takeBatch() cuts them from a full queue.
  const batches: Message[][] = [];
  for (let i = 0; i < records.length;) {
    let bytes = 0;
    let j = i;
    while (j < records.length && j - i < RELAY_BATCH_RECORDS) {
      if (j > i && bytes + records[j]!.size > RELAY_BATCH_BYTES) break;
      bytes += records[j]!.size;
      j += 1;
    }
    batches.push(messages.slice(i, j));
    i = j;
  }
  const producer = relayProducer(kafka, keys);
  await producer.connect();
  try {
    // Warm-up (untimed): producer id, metadata, connections, and JIT of the encoder on full-size requests.
    for (const batch of batches.slice(0, 2)) {
      const warm = toMessages(records.slice(0, batch.length), keys);
      await producer.sendBatch({ topicMessages: [{ topic, messages: warm }], acks: -1 });
    }
    const t0 = performance.now();
    const c0 = cpuUs();
    for (const batch of batches)
      await producer.sendBatch({ topicMessages: [{ topic, messages: batch }], acks: -1 });
    const seconds = (performance.now() - t0) / 1000;
    const cpuUsPerEvent = (cpuUs() - c0) / records.length;
    const totalBytes = records.reduce((s, r) => s + r.size, 0);
    return {
      size,
      n: records.length,
      seconds: round(seconds, 3),
      rate: round(records.length / seconds, 0),
      requests: batches.length,
      recordBytes: round(totalBytes / records.length, 0),
      mbPerSecond: round(totalBytes / seconds / 1024 / 1024, 2),
      cpuUsPerEvent: round(cpuUsPerEvent, 1),
      serializeUsPerEvent: round(serializeUsPerEvent, 1),
    };
  } finally {
    await producer.disconnect();
  }
}

/** One-record requests, one after the other (what strict mode sends): the acks=all round trip. */
export async function kafkaRoundTrip(
  kafka: Kafka,
  events: ChangeStreamDocument[],
  count = 800,
): Promise<Distribution> {
  const records = relayRecords(events.slice(0, count + 100));
  const topic = `${records[0]!.topic}.rtt`;
  await createTopic(kafka, topic, RELAY_DEFAULT_PARTITIONS);
  const keys = new WeakMap<Message, Buffer>();
  const producer = relayProducer(kafka, keys);
  await producer.connect();
  const times: number[] = [];
  try {
    for (const [i, m] of toMessages(records, keys).entries()) {
      const t0 = performance.now();
      await producer.sendBatch({ topicMessages: [{ topic, messages: [m] }], acks: -1 });
      if (i >= 100) times.push(performance.now() - t0); // skip the warm-up
    }
  } finally {
    await producer.disconnect();
  }
  const d = distribution(times);
  return {
    count: d.count,
    p50: round(d.p50, 3),
    p99: round(d.p99, 3),
    max: round(d.max, 3),
    mean: round(d.mean, 3),
  };
}
