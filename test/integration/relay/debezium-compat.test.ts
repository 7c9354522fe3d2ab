/**
 * RELAY_OUTPUT_FORMAT=debezium against the real thing: Debezium's MongoDB connector (Kafka Connect
 * standalone from Maven Central jars, scripts/kafka-connect/) and the relay watch the same collection
 * and see the same changes; their records are compared field by field. Allowed differences, each with
 * its reason (README, "Drop-in output formats"):
 *  - the topic prefix and what carries it (`source.name`, the logicalName header): both write to one
 *    broker, so each has its own;
 *  - `source.version` (the relay's version), the envelope's `ts_ms` and the runId header (processing
 *    time and run identity);
 *  - the relay's own headers (change-id, operation-type, ...), which Debezium does not write.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Decimal128, Long, ObjectId, UUID } from 'mongodb';
import { decodeRecord } from '../../../src/consumer/decode.js';
import {
  ensureConnectJars,
  startDebezium,
  type ConnectWorker,
} from '../../../scripts/kafka-connect/connectWorker.js';
import {
  asKafkaMessage,
  collectTopic,
  createTopic,
  kafkaClient,
  type CollectedMessage,
} from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { startRelayReady, type RelayProcess } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { sleep } from '../../../src/util/async.js';
import { waitFor } from '../../support/wait.js';

const RELAY_ONLY_HEADERS = [
  'change-id',
  'operation-type',
  'ns',
  'document-key',
  'cluster-time',
  'content-type',
];

/** A record with what may differ between the two removed: the comparable part. */
function comparable(m: CollectedMessage, prefix: string): Record<string, unknown> {
  const headers = { ...m.headers };
  for (const h of RELAY_ONLY_HEADERS) delete headers[h];
  expect(headers['__debezium.context.connectorLogicalName'], 'logicalName header').to.equal(prefix);
  expect(headers['__debezium.context.runId'], 'runId header').to.match(/^[0-9a-f-]{36}$/);
  delete headers['__debezium.context.connectorLogicalName'];
  delete headers['__debezium.context.runId'];
  if (m.value === null) return { key: m.key, partition: m.partition, value: null, headers };
  const value = JSON.parse(m.value) as Record<string, unknown> & { source: Record<string, unknown> };
  expect(value.source.name, 'source.name').to.equal(prefix);
  expect(value.ts_ms, 'ts_ms').to.be.a('number');
  const { version: _version, name: _name, ...source } = value.source;
  return { key: m.key, partition: m.partition, value: { ...value, ts_ms: 'any', source }, headers };
}

describe('RELAY_OUTPUT_FORMAT=debezium: the relay and the real Debezium MongoDB connector, record by record', function () {
  this.timeout(600_000);
  let ctx: RelayTestContext;
  let worker: ConnectWorker | null = null;
  let relay: RelayProcess | null = null;
  let dir = '';

  before(async function () {
    ctx = await relayTestContext('debezium-compat');
    dir = await mkdtemp(path.join(os.tmpdir(), 'relay-debezium-compat-'));
  });

  after(async () => {
    await relay?.kill('SIGTERM');
    await worker?.stop();
    await ctx?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the same keys, partitions, envelopes and tombstones for inserts, updates, replaces and deletes', async () => {
    const coll = 'people';
    const collection = ctx.mongo.db(ctx.db).collection(coll);
    const kafka = kafkaClient('debezium-compat');
    const dbzPrefix = `${ctx.topicPrefix}-dbz`;
    const relayPrefix = `${ctx.topicPrefix}-relay`;
    const dbzTopic = `${dbzPrefix}.${ctx.db}.${coll}`;
    const relayTopic = `${relayPrefix}.${ctx.db}.${coll}`;
    await createTopic(kafka, dbzTopic, 3);
    await createTopic(kafka, relayTopic, 3);

    // Debezium validates the connection by listing databases: the database must exist first. It then
    // streams from the moment its task starts (snapshot.mode=no_data), so markers go in until one
    // reaches its topic; the relay starts after that, from "now", and the markers stay before both.
    await collection.insertOne({ _id: 'marker-0' } as never);
    const services = getServices();
    const mongoUri = new URL(services.mongoUri);
    const hello = await ctx.mongo.db('admin').command({ hello: 1 });
    if (typeof hello.setName === 'string') mongoUri.searchParams.set('replicaSet', hello.setName);
    const libs = await ensureConnectJars((line) => console.log(`      ${line}`));
    worker = await startDebezium(libs, {
      brokers: services.brokers,
      mongoUri: mongoUri.toString(),
      collection: `${ctx.db}.${coll}`,
      topicPrefix: dbzPrefix,
      dir,
    });
    const fromDebezium = await collectTopic(dbzTopic, { kafka });
    const deadline = Date.now() + 240_000;
    for (let i = 1; fromDebezium.messages.length === 0; i++) {
      if (Date.now() > deadline || worker.child.exitCode !== null)
        throw new Error(`no record from Debezium:\n${worker.tail()}`);
      await collection.insertOne({ _id: `marker-${i}` } as never);
      await sleep(1000);
    }
    relay = await startRelayReady(
      ctx.env({
        RELAY_WATCH: `${ctx.db}.${coll}`,
        RELAY_OUTPUT_FORMAT: 'debezium',
        KAFKA_TOPIC: `${relayPrefix}.{db}.{coll}`,
      }),
    );
    const fromRelay = await collectTopic(relayTopic, { kafka });
    await sleep(1500);
    const markers = fromDebezium.messages.length;

    const oid = new ObjectId();
    // One change at a time, each seen on both topics before the next: an update's fullDocument is looked
    // up when the change stream returns it (updateLookup), so a later change to the same document would
    // otherwise make the two lookups differ by timing alone.
    const steps: [number, () => Promise<unknown>][] = [
      [
        1,
        () =>
          collection.insertOne({
            _id: oid,
            name: 'Ada',
            n: 1,
            big: Long.fromString('9007199254740993'),
            d: new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 120)),
            dec: Decimal128.fromString('1.10'),
            uuid: new UUID('0f0e0d0c-0b0a-0908-0706-050403020100'),
            dbl: 1.5,
            text: 'é ü 中 😀 \u2028 \u00ad \u0301 \u02b0 € "q" \\ \t',
            nested: { a: [1, 'x', null], e: {} },
          }),
      ],
      [
        1,
        () =>
          collection.updateOne(
            { _id: oid },
            { $set: { n: 2, 'nested.b': true, when: new Date(5) }, $unset: { dbl: '' } },
          ),
      ],
      [1, () => collection.replaceOne({ _id: oid }, { name: 'Ada L', n: 3 })],
      [1, () => collection.insertOne({ _id: 42, s: 'int id' } as never)],
      [1, () => collection.insertOne({ _id: 'str-id', s: 'string id' } as never)],
      [1, () => collection.insertOne({ _id: { a: 1, b: 'x', d: new Date(0) }, s: 'doc id' } as never)],
      [
        1,
        () =>
          collection.insertOne({ _id: new UUID('00112233-4455-6677-8899-aabbccddeeff'), s: 'uuid' } as never),
      ],
      [1, () => collection.updateOne({ _id: 42 } as never, { $set: { arr: [1, 2, 3] } })],
      [2, () => collection.deleteOne({ _id: oid })], // a delete and its tombstone
      [2, () => collection.deleteOne({ _id: 'str-id' } as never)],
    ];
    let expected = 0;
    for (const [records, change] of steps) {
      await change();
      expected += records;
      await waitFor(
        () => fromDebezium.messages.length - markers >= expected && fromRelay.messages.length >= expected,
        {
          timeoutMs: 120_000,
          message: () =>
            `${expected} records on both topics (Debezium ${fromDebezium.messages.length - markers}, relay ${fromRelay.messages.length})`,
        },
      );
    }
    await sleep(2000); // anything extra (a duplicate, a stray record) arrives too
    await fromDebezium.stop();
    await fromRelay.stop();

    const order = (ms: CollectedMessage[]): CollectedMessage[] =>
      [...ms].sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
    const dbz = order(fromDebezium.messages.filter((m) => !(m.key ?? '').includes('marker')));
    const mine = order(fromRelay.messages);
    expect(mine.length, 'relay records').to.equal(expected);
    expect(dbz.length, 'Debezium records').to.equal(expected);
    for (let i = 0; i < expected; i++) {
      const label = `record ${i} (Debezium key ${dbz[i]!.key}, partition ${dbz[i]!.partition})`;
      expect(comparable(mine[i]!, relayPrefix), label).to.deep.equal(comparable(dbz[i]!, dbzPrefix));
    }
    // The relay's own headers came too: the consumer helper reads these records with their change IDs.
    const ops = mine.map((m) => {
      const decoded = decodeRecord(m.topic, m.partition, asKafkaMessage(m), { relaxed: false });
      if (!decoded.ok) throw new Error(`the consumer helper could not read ${m.key}: ${decoded.error}`);
      expect(decoded.changeId).to.equal(m.headers['change-id']);
      return decoded.tombstone ? 'tombstone' : decoded.event.operationType;
    });
    expect(ops.filter((o) => o === 'tombstone')).to.have.length(2);
    expect(new Set(ops)).to.deep.equal(new Set(['insert', 'update', 'replace', 'delete', 'tombstone']));
  });
});
