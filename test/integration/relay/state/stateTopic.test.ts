/**
 * State topics (issue 15 item 4): with RELAY_KEY=document, keeping the latest record per key of the topic
 * (and dropping keys whose latest record is a tombstone) gives exactly the source collections' current
 * documents — read directly, built by the consumer helper, and after the broker compacted the topic.
 */
import { expect } from 'chai';
import pino from 'pino';
import { Registry } from 'prom-client';
import { BSON, type Document } from 'mongodb';
import { createChangeConsumer, type ChangeConsumer } from '../../../../src/consumer/index.js';
import { partitionFor } from '../../../../src/pipeline/murmur2.js';
import { collectTopic, createTopic, kafkaClient, type CollectedMessage } from '../../../support/kafka.js';
import { chooseSeed, SeededRandom } from '../../../support/random.js';
import { relayTestContext, type RelayTestContext } from '../../../support/relayFixture.js';
import { killAllRelays, startRelayReady } from '../../../support/relayProcess.js';
import { waitFor } from '../../../support/wait.js';

const COLLECTIONS = ['items', 'others'] as const;
const IDS = 25;
const OPS = 400;

/** The key the relay gives a document of `ns` (src/pipeline/toRecord.ts): ns, NUL, canonical documentKey. */
const keyOf = (ns: string, id: unknown) =>
  `${ns}\u0000${BSON.EJSON.stringify({ _id: id }, { relaxed: false })}`;
const canonical = (doc: unknown) => BSON.EJSON.stringify(doc, { relaxed: false });

/** Latest record per key, in offset order per partition; keys whose latest is a tombstone are dropped. */
function latestDocuments(messages: readonly CollectedMessage[]): Map<string, string> {
  const latest = new Map<string, CollectedMessage>();
  const ordered = [...messages].sort(
    (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
  );
  for (const m of ordered) latest.set(m.key!, m);
  const state = new Map<string, string>();
  for (const [key, m] of latest) {
    if (m.value === null) continue;
    const event = BSON.EJSON.parse(m.value, { relaxed: false }) as { fullDocument?: Document | null };
    state.set(key, canonical(event.fullDocument ?? null));
  }
  return state;
}

describe('relay: state topics (RELAY_KEY=document)', function () {
  this.timeout(300_000);
  let ctx: RelayTestContext;
  let topic: string;
  let seed: number;
  const consumers: ChangeConsumer[] = [];

  before(async function () {
    ctx = await relayTestContext('state');
    // One topic for every collection: the namespace in the key keeps equal _ids of two collections apart.
    topic = `${ctx.topicPrefix}.state`;
    await startRelayReady(
      ctx.env({ RELAY_KEY: 'document', RELAY_VALUE_FORMAT: 'canonical', KAFKA_TOPIC: topic }),
    );
  });
  after(async () => {
    await Promise.all(consumers.map((c) => c.stop()));
    await killAllRelays();
    await ctx.mongo
      .db(`${ctx.db}_seen`)
      .dropDatabase()
      .catch(() => undefined);
    await ctx.close();
  });

  /** The source's current documents, by the key the relay gives them. */
  async function sourceState(): Promise<Map<string, string>> {
    const state = new Map<string, string>();
    for (const coll of COLLECTIONS)
      for (const doc of await ctx.mongo.db(ctx.db).collection(coll).find().toArray())
        state.set(keyOf(`${ctx.db}.${coll}`, doc._id), canonical(doc));
    return state;
  }

  it('after inserts, updates, replaces and deletes, the latest record per key is exactly the source (seeded workload)', async () => {
    seed = chooseSeed();
    console.log(`      state-topic workload seed ${seed} (TEST_SEED=${seed} replays)`);
    const rand = new SeededRandom(seed);
    const present = new Map<string, Set<number>>(COLLECTIONS.map((c) => [c, new Set<number>()]));
    let deletes = 0;
    for (let op = 0; op < OPS; op++) {
      const coll = rand.pick(COLLECTIONS);
      const c = ctx.mongo
        .db(ctx.db)
        .collection<{ _id: number; v: number; tag?: string; replaced?: boolean }>(coll);
      const id = rand.int(IDS);
      const ids = present.get(coll)!;
      if (!ids.has(id)) {
        await c.insertOne({ _id: id, v: op, tag: `t${rand.int(5)}` });
        ids.add(id);
      } else {
        const choice = rand.int(4);
        if (choice === 0) await c.updateOne({ _id: id }, { $set: { v: op }, $inc: { n: 1 } });
        else if (choice === 1) await c.replaceOne({ _id: id }, { v: op, replaced: true });
        else if (choice === 2) await c.updateOne({ _id: id }, { $unset: { tag: '' }, $set: { w: op } });
        else {
          await c.deleteOne({ _id: id });
          ids.delete(id);
          deletes++;
        }
      }
    }
    expect(deletes, 'the workload deletes documents').to.be.greaterThan(10);
    const expected = await sourceState();
    const collector = await collectTopic(topic);
    try {
      await waitFor(
        () => {
          const got = latestDocuments(collector.messages);
          return got.size === expected.size && [...expected].every(([k, v]) => got.get(k) === v);
        },
        {
          timeoutMs: 120_000,
          intervalMs: 500,
          message: () => {
            const got = latestDocuments(collector.messages);
            const wrong = [...expected].filter(([k, v]) => got.get(k) !== v).length;
            const extra = [...got.keys()].filter((k) => !expected.has(k)).length;
            return `latest-per-key state equal to the source (${collector.messages.length} records; ${wrong} keys differ or are missing, ${extra} keys too many)`;
          },
        },
      );
      const messages = [...collector.messages].sort(
        (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
      );
      const tombstones = messages.filter((m) => m.value === null);
      expect(tombstones, 'one tombstone per delete').to.have.length(deletes);
      const partitions = (await topicPartitions(topic)).length;
      for (const t of tombstones) {
        // Right after its delete record, in the same partition, with the same key and change ID.
        const del = messages.find(
          (m) => m.partition === t.partition && BigInt(m.offset) === BigInt(t.offset) - 1n,
        );
        expect(del, `the record before the tombstone at ${t.partition}/${t.offset}`).to.not.equal(undefined);
        expect(del!.headers['operation-type']).to.equal('delete');
        expect(del!.key).to.equal(t.key);
        expect(t.headers['change-id'])
          .to.match(/^[0-9A-F]+$/)
          .and.to.equal(del!.headers['change-id']);
        expect(t.headers['operation-type']).to.equal('delete');
        // The partition Kafka's default partitioner would pick from the key: compaction sees every record of a key.
        expect(t.partition).to.equal(partitionFor(Buffer.from(t.key!), partitions));
      }
      for (const m of messages) {
        expect(m.headers['change-id'], 'every record carries its change ID').to.match(/^[0-9A-F]+$/);
        expect(m.key).to.not.equal(m.headers['change-id']);
      }
    } finally {
      await collector.stop();
    }
  });

  it('is created with cleanup.policy=compact', async () => {
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      const described = await admin.describeConfigs({
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
        includeSynonyms: false,
      });
      const entry = described.resources[0]!.configEntries.find((e) => e.configName === 'cleanup.policy');
      expect(entry?.configValue).to.equal('compact');
    } finally {
      await admin.disconnect();
    }
  });

  it('the consumer helper dedupes document-keyed records by change ID and builds the same state', async () => {
    await createTopic(kafkaClient(), `${topic}.dlq`, 1); // the helper's dead letters (none expected)
    const view = new Map<string, string>();
    const handled = new Map<string, number>();
    const consumer = createChangeConsumer({
      kafka: kafkaClient('state-consumer'),
      groupId: `${topic}.view`,
      topics: [topic],
      consumerConfig: { maxWaitTimeInMs: 200, sessionTimeout: 10_000, heartbeatInterval: 1_000 },
      mongo: { client: ctx.mongo },
      // Not in the watched database: its marks would be relayed into the topic the consumer reads.
      seen: { db: `${ctx.db}_seen`, collection: 'seen' },
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
      handler: (event, { changeId }) => {
        handled.set(changeId, (handled.get(changeId) ?? 0) + 1);
        const e = event as {
          ns: { db: string; coll: string };
          documentKey: { _id: unknown };
          fullDocument?: Document;
        };
        const key = keyOf(`${e.ns.db}.${e.ns.coll}`, e.documentKey._id);
        if (event.operationType === 'delete') view.delete(key);
        else view.set(key, canonical(e.fullDocument ?? null));
      },
    });
    consumers.push(consumer);
    await consumer.start();
    const expected = await sourceState();
    await waitFor(() => view.size === expected.size && [...expected].every(([k, v]) => view.get(k) === v), {
      timeoutMs: 120_000,
      intervalMs: 500,
      message: () => `the consumer's view equal to the source (${view.size} of ${expected.size} documents)`,
    });
    expect(
      [...handled.values()].filter((n) => n > 1),
      'change IDs handled more than once',
    ).to.deep.equal([]);
    // Every change exactly once: the tombstones (same change ID as their deletes) added no call.
    expect(handled.size).to.equal(OPS);
  });

  it('after the broker compacted the topic, the latest record per key is still exactly the source', async function () {
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      // Make the log cleaner act within the test: tiny segments, any dirt worth cleaning, no lag.
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2 /* TOPIC */,
            name: topic,
            configEntries: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'segment.ms', value: '100' },
              { name: 'min.cleanable.dirty.ratio', value: '0.01' },
              { name: 'min.compaction.lag.ms', value: '0' },
            ],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const before = await readAll(topic);
    // The active segment is never cleaned: append to every partition after segment.ms, so the
    // workload's records sit in closed segments.
    await new Promise((r) => setTimeout(r, 1500));
    const partitions = (await topicPartitions(topic)).length;
    const ticks = ctx.mongo.db(ctx.db).collection<{ _id: number }>('ticks');
    const covered = new Set<number>();
    for (let id = 0; covered.size < partitions; id++) {
      const p = partitionFor(Buffer.from(keyOf(`${ctx.db}.ticks`, id)), partitions);
      if (covered.has(p)) continue;
      covered.add(p);
      await ticks.insertOne({ _id: id });
    }
    const expected = await sourceState();
    let compacted: CollectedMessage[] = [];
    await waitFor(
      async () => {
        compacted = (await readAll(topic)).filter((m) => !m.key!.startsWith(`${ctx.db}.ticks\u0000`));
        return compacted.length < before.length * 0.5 && compacted;
      },
      {
        timeoutMs: 150_000,
        intervalMs: 3000,
        message: () =>
          `the broker to compact ${topic} (${before.length} records before, ${compacted.length} now)`,
      },
    );
    console.log(`      compaction: ${before.length} records -> ${compacted.length}`);
    const got = latestDocuments(compacted);
    expect(new Map([...got].sort())).to.deep.equal(new Map([...expected].sort()));
  });
});

async function topicPartitions(topic: string) {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    return meta!.partitions;
  } finally {
    await admin.disconnect();
  }
}

/** Every record of the topic now, read from the beginning up to the high-water marks. */
async function readAll(topic: string): Promise<CollectedMessage[]> {
  const admin = kafkaClient().admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const collector = await collectTopic(topic);
  try {
    await waitFor(
      () =>
        ends.every((e) => {
          const high = BigInt(e.high);
          const low = BigInt(e.low);
          if (high === low) return true;
          return collector.messages.some((m) => m.partition === e.partition && BigInt(m.offset) >= high - 1n);
        }),
      {
        timeoutMs: 60_000,
        message: () => `the whole of ${topic} (${collector.messages.length} records read)`,
      },
    );
    return [...collector.messages];
  } finally {
    await collector.stop();
  }
}

describe('relay: state topics on an existing topic that is not compacted', function () {
  let ctx: RelayTestContext;

  before(async () => {
    ctx = await relayTestContext('state-existing');
  });
  after(async () => {
    await killAllRelays();
    await ctx.close();
  });

  it('warns at start, naming the topic and the config to add (retention would delete unchanged documents)', async () => {
    const topic = `${ctx.topicPrefix}.existing`;
    await createTopic(kafkaClient(), topic, 3); // the broker's default cleanup.policy: delete
    const relay = await startRelayReady(
      ctx.env({ RELAY_KEY: 'document', RELAY_WATCH: `${ctx.db}.orders`, KAFKA_TOPIC: topic }),
    );
    const warning = await relay.waitForLog(
      (l) => l.topic === topic && l.msg.includes('cleanup.policy=compact'),
      60_000,
      'the warning about the existing topic',
    );
    expect(warning).to.deep.include({
      expected: { 'cleanup.policy': 'compact' },
      actual: { 'cleanup.policy': 'delete' },
    });
    expect(warning.level).to.equal(40); // pino's warn
  });
});
