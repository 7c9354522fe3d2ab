import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';
import { BSON, ObjectId } from 'mongodb';
import { Registry } from 'prom-client';

import { decodeRecord } from '../../../src/consumer/decode.js';
import { IdempotentHandlerDelivery } from '../../../src/consumer/delivery.js';
import type { ConsumerLogger } from '../../../src/consumer/logging.js';
import { ConsumerMetricName, ConsumerMetrics } from '../../../src/consumer/metrics.js';
import { PartitionMemory } from '../../../src/consumer/chunk.js';
import { RecordProcessor } from '../../../src/consumer/recordProcessor.js';
import type { SeenMark } from '../../../src/consumer/seenStore.js';
import type { ChangeEvent } from '../../../src/consumer/types.js';
import { toRecord, tombstoneFor, type OutboundRecord } from '../../../src/pipeline/toRecord.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';
import { ChangeEventFactory } from '../../support/change-records.js';

const factory = new ChangeEventFactory({ db: 'shop', coll: 'or.ders', startSeconds: 1_700_000_000 });
const router = new TopicRouter('mongo.{db}.{coll}', { level: 'database', db: 'shop' });

/** The relay's own records in document mode (src/pipeline/toRecord.ts), as a consumer fetches them. */
function relayed(event: ReturnType<ChangeEventFactory['delete']>, offset: number): KafkaMessage[] {
  const token = event._id as { _data: string };
  const record = toRecord(event, token, router, {
    format: 'relaxed',
    partitionBy: 'document',
    key: 'document',
  });
  const records: OutboundRecord[] =
    event.operationType === 'delete' ? [record, tombstoneFor(record)] : [record];
  return records.map((r, i) => {
    const headers: Record<string, Buffer> = {};
    for (const [name, value] of Object.entries(r.headers)) headers[name] = Buffer.from(value);
    return {
      key: Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      headers,
      offset: String(offset + i),
      timestamp: '0',
      attributes: 0,
    };
  });
}

describe('consumer helper on a state topic (RELAY_KEY=document, issue 15 item 4)', () => {
  describe('decodeRecord', () => {
    it('takes the change ID from the header, not from the document key', () => {
      const id = new ObjectId();
      const [message] = relayed(factory.insert({ _id: id, n: 1 }), 0);
      const decoded = decodeRecord('t', 0, message!, { relaxed: false });
      if (!decoded.ok) throw new Error(decoded.error);
      expect(decoded.record.key).to.contain(id.toHexString());
      expect(decoded.changeId).to.match(/^[0-9A-F]+$/);
      expect(decoded.tombstone).to.equal(false);
    });

    it('reads a tombstone as its delete, rebuilt from the headers (dotted collection names included)', () => {
      const id = new ObjectId();
      const event = factory.delete(id);
      const [del, tombstone] = relayed(event, 0);
      const fromDelete = decodeRecord('t', 0, del!, { relaxed: false });
      const fromTombstone = decodeRecord('t', 0, tombstone!, { relaxed: false });
      if (!fromDelete.ok || !fromTombstone.ok) throw new Error('expected both to decode');
      expect(fromTombstone.tombstone).to.equal(true);
      expect(fromTombstone.changeId).to.equal(fromDelete.changeId);
      const rebuilt = fromTombstone.event as ChangeEvent & { documentKey: { _id: ObjectId } };
      expect(rebuilt).to.deep.equal({
        _id: event._id,
        operationType: 'delete',
        ns: { db: 'shop', coll: 'or.ders' },
        documentKey: { _id: id },
        clusterTime: event.clusterTime,
      });
      expect(rebuilt.documentKey._id).to.be.instanceOf(ObjectId);
      expect(rebuilt.clusterTime).to.be.instanceOf(BSON.Timestamp);
    });

    it('dead-letters a null value that is not a relay tombstone (no document-key header) as before', () => {
      const message: KafkaMessage = {
        key: Buffer.from('k'),
        value: null,
        headers: { 'change-id': Buffer.from('82AA'), 'operation-type': Buffer.from('delete') },
        offset: '0',
        timestamp: '0',
        attributes: 0,
      };
      expect(decodeRecord('t', 0, message, { relaxed: false })).to.include({
        ok: false,
        reason: 'decode-failed',
      });
    });
  });

  describe('RecordProcessor', () => {
    const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };

    function setup() {
      const marks = new Map<string, SeenMark>();
      const handled: ChangeEvent[] = [];
      const registry = new Registry();
      const processor = new RecordProcessor({
        store: {
          findSeen: async (ids) => new Set(ids.filter((id) => marks.has(id))),
          writeMarks: async (written) => {
            for (const m of written) marks.set(m.changeId, m);
          },
        },
        delivery: new IdempotentHandlerDelivery({
          kind: 'record',
          handler: (event: ChangeEvent) => {
            handled.push(event);
          },
        }),
        deadLetters: {
          publish: async () => {
            throw new Error('nothing may be dead-lettered here');
          },
        },
        metrics: new ConsumerMetrics(registry),
        logger: silent,
        settings: {
          retryLimits: { attempts: 1, maxElapsedMs: Infinity },
          handlerBackoff: { initialDelayMs: 1, maxDelayMs: 1, multiplier: 2, jitter: 0 },
          outageBackoff: { initialDelayMs: 1, maxDelayMs: 1, multiplier: 2, jitter: 0 },
          classify: undefined,
          handlerTimeoutMs: 30_000,
          relaxedEjson: false,
          markFlushIntervalMs: 60_000,
        },
      });
      const memory = new PartitionMemory();
      const scope = { signal: new AbortController().signal, heartbeat: async () => undefined, memory };
      const duplicates = async () =>
        ((await registry.getSingleMetric(ConsumerMetricName.duplicates)?.get())?.values ?? []).reduce(
          (sum, v) => sum + v.value,
          0,
        );
      return { processor, scope, handled, marks, duplicates };
    }

    it('hands each change of a document to the handler once: the tombstone after its delete is skipped, not a duplicate', async () => {
      const { processor, scope, handled, marks, duplicates } = setup();
      const id = new ObjectId();
      const messages = [
        ...relayed(factory.insert({ _id: id, n: 1 }), 0),
        ...relayed(factory.update({ _id: id, n: 2 }, { n: 2 }), 1),
        ...relayed(factory.delete(id), 2),
      ];
      expect(messages.map((m) => m.value === null)).to.deep.equal([false, false, false, true]);
      const result = await processor.processChunk('t', 0, messages, scope);
      expect(result).to.deep.equal({ done: 4 });
      expect(handled.map((e) => e.operationType)).to.deep.equal(['insert', 'update', 'delete']);
      expect(marks.size).to.equal(3);
      expect(await duplicates()).to.equal(0);
      // The same records again (a re-delivery): every change is a duplicate, the tombstone still is not.
      await processor.processChunk('t', 0, messages, scope);
      expect(handled).to.have.length(3);
      expect(await duplicates()).to.equal(3);
    });

    it('dedupes a document-keyed record by its change ID, though every change of the document has the same key', async () => {
      const { processor, scope, handled } = setup();
      const id = new ObjectId();
      const first = relayed(factory.update({ _id: id, n: 1 }, { n: 1 }), 0);
      const second = relayed(factory.update({ _id: id, n: 2 }, { n: 2 }), 1);
      expect(first[0]!.key!.equals(second[0]!.key!)).to.equal(true);
      await processor.processChunk('t', 0, [...first, ...second, ...first], scope);
      expect(handled).to.have.length(2);
    });

    it('hands over the delete rebuilt from a tombstone whose delete record was compacted away', async () => {
      const { processor, scope, handled } = setup();
      const id = new ObjectId();
      const [, tombstone] = relayed(factory.delete(id), 5);
      const result = await processor.processChunk('t', 0, [tombstone!], scope);
      expect(result).to.deep.equal({ done: 1 });
      expect(handled).to.have.length(1);
      expect(handled[0]).to.include({ operationType: 'delete' });
      expect((handled[0] as { documentKey: { _id: ObjectId } }).documentKey._id.equals(id)).to.equal(true);
    });
  });
});
