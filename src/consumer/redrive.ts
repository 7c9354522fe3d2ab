/**
 * Re-drive: give dead-lettered changes another try once their cause is fixed.
 *
 * Reads a dead-letter topic from its start to its end as of now; for each dead letter of the consumer
 * group whose seen mark still says `dead-lettered`, sets the mark to `redrive-pending` (which the
 * consumer treats as "not seen") and re-publishes the original record (key, value, original headers) to
 * its source topic and partition. The consumer then handles it like any change, and its mark records the
 * new outcome. Records whose mark says `handled`, or that have no mark any more (expired), are skipped.
 *
 * Invariant: a mark is changed before its record is re-published (never after, or the consumer could
 * skip the re-published record as seen); a re-drive interrupted between the two leaves `redrive-pending`
 * marks, which the next re-drive re-publishes. Re-publishing twice is harmless: the second copy is a
 * duplicate. A re-driven change arrives after newer changes of the same document: handlers must apply
 * an older change over a newer one safely (see the materialized-view example).
 */
import { randomBytes } from 'node:crypto';

import { Kafka, type KafkaConfig, type KafkaMessage, type IHeaders } from 'kafkajs';
import { MongoClient } from 'mongodb';

import { DeadLetterHeader } from './deadLetter.js';
import { changeIdOf, decodeHeaders } from './decode.js';
import type { ConsumerLogger } from './logging.js';
import type { MongoConnection } from './options.js';
import { SeenStore, type SeenDocument } from './seenStore.js';

export interface RedriveOptions {
  readonly kafka: Kafka | KafkaConfig;
  readonly mongo: MongoConnection;
  /** The consumer group whose dead letters to re-drive. */
  readonly groupId: string;
  readonly deadLetterTopic: string;
  /** Where the group's marks are: as the consumer's `seen` options (db, collection, scope). */
  readonly seen?: { readonly db?: string; readonly collection?: string; readonly scope?: string };
  /** Only count what would be re-driven. */
  readonly dryRun?: boolean;
  /**
   * Only set the marks to `redrive-pending`, publish nothing: for an application that consumes the
   * dead-letter topic itself with the same seen collection and scope.
   */
  readonly clearOnly?: boolean;
  readonly logger?: ConsumerLogger;
}

export interface RedriveReport {
  /** Dead letters of this group read from the topic. */
  readonly read: number;
  /** Re-published (or, with clearOnly, made pending; with dryRun, would be). */
  readonly redriven: number;
  /** Dead letters whose change is handled already or whose mark has expired. */
  readonly skipped: number;
  /** Dead letters of other consumer groups in the same topic (left alone). */
  readonly otherGroups: number;
  readonly dryRun: boolean;
  readonly changeIds: readonly string[];
}

interface DeadLetterRecord {
  readonly changeId: string;
  readonly message: KafkaMessage;
  readonly headers: Readonly<Record<string, string>>;
}

const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The original record's headers: everything but the `dead-letter-*` ones. */
function originalHeaders(message: KafkaMessage): IHeaders {
  const headers: IHeaders = {};
  const deadLetterNames = new Set<string>(Object.values(DeadLetterHeader));
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value !== undefined && !deadLetterNames.has(name)) headers[name] = value;
  }
  return headers;
}

/** Every record of `topic` between its start and its end as of the call. */
async function readToEnd(
  kafka: Kafka,
  topic: string,
): Promise<Array<{ partition: number; message: KafkaMessage }>> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `mongo-kafka-relay-redrive-${randomBytes(6).toString('hex')}`;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    const remaining = new Set(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => o.partition));
    const records: Array<{ partition: number; message: KafkaMessage }> = [];
    if (remaining.size === 0) return records;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer.on(consumer.events.CRASH, (event) => {
          if (!event.payload.restart) reject(event.payload.error);
        });
        void consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const end = ends.get(partition) ?? 0n;
              if (BigInt(message.offset) < end) records.push({ partition, message });
              if (BigInt(message.offset) + 1n >= end && remaining.delete(partition) && remaining.size === 0)
                resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    records.sort(
      (a, b) => a.partition - b.partition || Number(BigInt(a.message.offset) - BigInt(b.message.offset)),
    );
    return records;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** Re-drives the dead letters of one consumer group; see the module header. */
export async function redriveDeadLetters(options: RedriveOptions): Promise<RedriveReport> {
  const logger = options.logger ?? silent;
  const dryRun = options.dryRun ?? false;
  const kafka = options.kafka instanceof Kafka ? options.kafka : new Kafka(options.kafka);
  const client =
    'client' in options.mongo
      ? options.mongo.client
      : new MongoClient(options.mongo.uri, options.mongo.options);
  const ownsClient = !('client' in options.mongo);
  try {
    if (ownsClient) await client.connect();
    const store = new SeenStore(
      client
        .db(options.seen?.db ?? 'mongo_kafka_relay')
        .collection<SeenDocument>(options.seen?.collection ?? 'seen_changes'),
      options.seen?.scope ?? options.groupId,
    );

    const mine: DeadLetterRecord[] = [];
    let otherGroups = 0;
    for (const { message } of await readToEnd(kafka, options.deadLetterTopic)) {
      const headers = decodeHeaders(message.headers);
      const group = headers[DeadLetterHeader.groupId];
      const changeId = changeIdOf(message.key, headers);
      if ((group !== undefined && group !== options.groupId) || changeId === null) {
        otherGroups++;
        continue;
      }
      mine.push({ changeId, message, headers });
    }

    // One dead letter per change: the latest (a change dead-lettered again after a re-drive).
    const latest = new Map<string, DeadLetterRecord>();
    for (const record of mine) latest.set(record.changeId, record);
    const marks = await store.readMarks([...latest.keys()]);
    const due = [...latest.values()].filter((record) => {
      const outcome = marks.get(record.changeId)?.outcome;
      return outcome === 'dead-lettered' || outcome === 'redrive-pending';
    });

    if (!dryRun && due.length > 0) {
      await store.markRedrivePending(due.map((record) => record.changeId));
      if (!options.clearOnly) {
        const producer = kafka.producer();
        await producer.connect();
        try {
          for (const record of due) {
            const topic = record.headers[DeadLetterHeader.sourceTopic];
            const partition = Number(record.headers[DeadLetterHeader.sourcePartition]);
            if (!topic || !Number.isInteger(partition)) {
              throw new Error(
                `dead letter ${options.deadLetterTopic}/${record.message.offset} has no ${DeadLetterHeader.sourceTopic} or ${DeadLetterHeader.sourcePartition} header; cannot re-drive it`,
              );
            }
            await producer.send({
              topic,
              acks: -1,
              messages: [
                {
                  key: record.message.key,
                  value: record.message.value,
                  headers: originalHeaders(record.message),
                  partition,
                },
              ],
            });
          }
        } finally {
          await producer.disconnect();
        }
      }
    }
    const report: RedriveReport = {
      read: mine.length,
      redriven: due.length,
      skipped: mine.length - due.length,
      otherGroups,
      dryRun,
      changeIds: due.map((record) => record.changeId),
    };
    logger.info(
      { ...report, deadLetterTopic: options.deadLetterTopic, groupId: options.groupId },
      're-drive done',
    );
    return report;
  } finally {
    if (ownsClient) await client.close();
  }
}
