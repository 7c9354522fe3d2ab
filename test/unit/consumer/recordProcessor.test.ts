import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';
import { ObjectId } from 'mongodb';
import { Registry } from 'prom-client';

import type { DeadLetterInfo, SourceRecord } from '../../../src/consumer/deadLetter.js';
import { IdempotentHandlerDelivery, type Handlers } from '../../../src/consumer/delivery.js';
import { HandlerTimeoutError, PermanentHandlerError } from '../../../src/consumer/errors.js';
import type { ConsumerLogger } from '../../../src/consumer/logging.js';
import { ConsumerMetricName, ConsumerMetrics } from '../../../src/consumer/metrics.js';
import { PartitionMemory, type ChunkScope } from '../../../src/consumer/chunk.js';
import { RecordProcessor, type ProcessorSettings } from '../../../src/consumer/recordProcessor.js';
import type { SeenMark } from '../../../src/consumer/seenStore.js';
import type { BatchContext, HandlerContext } from '../../../src/consumer/types.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';

const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };
const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders', startSeconds: 1_700_000_000 });

function messages(count: number, firstOffset = 0): KafkaMessage[] {
  return Array.from({ length: count }, (_, index) => {
    const record = toRelayRecord(factory.insert({ _id: new ObjectId(), index }));
    const headers: Record<string, Buffer> = {};
    for (const [name, value] of Object.entries(record.headers)) headers[name] = Buffer.from(value);
    return {
      key: Buffer.from(record.key),
      value: Buffer.from(record.value),
      headers,
      offset: String(firstOffset + index),
      timestamp: '0',
      attributes: 0,
    };
  });
}

const keyOf = (message: KafkaMessage): string => message.key!.toString();

/** The message as the relay would have published another change: key and change-id header agree. */
function withChangeId(message: KafkaMessage, changeId: string): KafkaMessage {
  const copy: KafkaMessage = { ...message };
  copy.key = Buffer.from(changeId);
  copy.headers = { ...message.headers, 'change-id': Buffer.from(changeId) };
  return copy;
}

/** An in-memory seen store that counts its calls and can be made to fail. */
class FakeStore {
  readonly marks = new Map<string, SeenMark>();
  readonly lookups: string[][] = [];
  readonly writes: SeenMark[][] = [];
  failLookups = false;
  failWrites = false;

  async findSeen(changeIds: readonly string[]): Promise<Set<string>> {
    this.lookups.push([...changeIds]);
    if (this.failLookups) throw new Error('MongoDB unreachable');
    return new Set(changeIds.filter((id) => this.marks.has(id)));
  }

  async writeMarks(marks: readonly SeenMark[]): Promise<void> {
    if (this.failWrites) throw new Error('MongoDB unreachable');
    this.writes.push([...marks]);
    for (const mark of marks) if (!this.marks.has(mark.changeId)) this.marks.set(mark.changeId, mark);
  }
}

class FakeDeadLetters {
  readonly published: Array<{ source: SourceRecord; info: DeadLetterInfo }> = [];
  fail = false;

  async publish(source: SourceRecord, info: DeadLetterInfo) {
    if (this.fail) throw new Error('broker unreachable');
    this.published.push({ source, info });
    return { topic: `${source.topic}.dlq`, partition: source.partition };
  }
}

const baseSettings: ProcessorSettings = {
  retryLimits: { attempts: Infinity, maxElapsedMs: Infinity },
  handlerBackoff: { initialDelayMs: 200, maxDelayMs: 60_000, multiplier: 2, jitter: 0 },
  outageBackoff: { initialDelayMs: 500, maxDelayMs: 30_000, multiplier: 2, jitter: 0 },
  classify: undefined,
  handlerTimeoutMs: 30_000,
  relaxedEjson: false,
  markFlushIntervalMs: 60_000,
};

function setup(
  handlers: Handlers<never, HandlerContext, BatchContext>,
  settings: Partial<ProcessorSettings> = {},
) {
  const store = new FakeStore();
  const deadLetters = new FakeDeadLetters();
  const registry = new Registry();
  const processor = new RecordProcessor({
    store,
    delivery: new IdempotentHandlerDelivery(handlers),
    deadLetters,
    metrics: new ConsumerMetrics(registry),
    logger: silent,
    settings: { ...baseSettings, ...settings },
    random: () => 0,
  });
  const memory = new PartitionMemory();
  const scope = (signal = new AbortController().signal): ChunkScope => ({
    signal,
    heartbeat: async () => undefined,
    memory,
  });
  const metric = async (name: string): Promise<number> =>
    ((await registry.getSingleMetric(name)?.get())?.values ?? []).reduce((sum, v) => sum + v.value, 0);
  return { store, deadLetters, processor, memory, scope, metric };
}

describe('consumer/recordProcessor', () => {
  it('looks the chunk up in one $in query and writes its marks in one bulk write', async () => {
    const handled: string[] = [];
    const { store, processor, scope, metric } = setup({
      kind: 'record',
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    const chunk = messages(50);
    expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 50 });
    expect(store.lookups).to.have.length(1);
    expect(store.lookups[0]).to.have.length(50);
    expect(store.writes).to.have.length(1);
    expect(store.writes[0]!.map((mark) => [mark.changeId, mark.outcome])).to.deep.equal(
      chunk.map((message) => [keyOf(message), 'handled']),
    );
    expect(handled).to.deep.equal(chunk.map(keyOf));
    expect(await metric(ConsumerMetricName.handled)).to.equal(50);
  });

  it('skips changes already seen and repeats inside the chunk, and counts them as duplicates', async () => {
    const handled: string[] = [];
    const { store, processor, scope, metric } = setup({
      kind: 'record',
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    const [a, b, c] = messages(3);
    store.marks.set(keyOf(a!), {
      changeId: keyOf(a!),
      topic: 't',
      partition: 0,
      offset: '0',
      outcome: 'handled',
    });
    const repeatOfB = { ...b!, offset: '3' };
    expect(await processor.processChunk('t', 0, [a!, b!, c!, repeatOfB], scope())).to.deep.equal({ done: 4 });
    expect(handled).to.deep.equal([keyOf(b!), keyOf(c!)]);
    expect(await metric(ConsumerMetricName.duplicates)).to.equal(2);
  });

  it('on a retryable error, writes the marks of the records before, and asks the partition to wait with backoff', async () => {
    let failing = true;
    const attempts: number[] = [];
    const chunk = messages(3);
    const { store, processor, scope, memory } = setup({
      kind: 'record',
      handler: (_event, { changeId, attempt }) => {
        if (changeId !== keyOf(chunk[1]!)) return;
        attempts.push(attempt);
        if (failing) throw new Error('503');
      },
    });
    const first = await processor.processChunk('t', 0, chunk, scope());
    expect(first).to.deep.equal({
      done: 1,
      wait: { reason: 'handler-retry', delayMs: 200, error: '503', offset: '1', attempts: 1 },
    });
    expect(store.writes.flat().map((mark) => mark.offset)).to.deep.equal(['0']);

    const second = await processor.processChunk('t', 0, chunk.slice(1), scope());
    expect(second.wait).to.deep.include({ delayMs: 400, attempts: 2 });
    failing = false;
    expect(await processor.processChunk('t', 0, chunk.slice(1), scope())).to.deep.equal({ done: 2 });
    expect(attempts).to.deep.equal([1, 2, 3]);
    expect(memory.retry).to.equal(undefined);
  });

  it('dead-letters a permanent error at once, marks it dead-lettered and goes on', async () => {
    const chunk = messages(3);
    const { store, deadLetters, processor, scope } = setup({
      kind: 'record',
      handler: (_event, { changeId }) => {
        if (changeId === keyOf(chunk[1]!)) throw new PermanentHandlerError('bad data');
      },
    });
    expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 3 });
    expect(deadLetters.published.map((p) => [p.source.message.offset, p.info])).to.deep.equal([
      ['1', { reason: 'handler-failed', error: 'bad data', errorName: 'PermanentHandlerError', attempts: 1 }],
    ]);
    const mark = store.marks.get(keyOf(chunk[1]!));
    expect(mark).to.deep.include({ outcome: 'dead-lettered' });
    expect(mark?.deadLetter).to.deep.equal({
      reason: 'handler-failed',
      error: 'bad data',
      topic: 't.dlq',
      attempts: 1,
    });
  });

  it('dead-letters a retryable error when an explicit attempts limit is reached', async () => {
    const [record] = messages(1);
    const { deadLetters, processor, scope } = setup(
      { kind: 'record', handler: () => Promise.reject(new Error('still down')) },
      { retryLimits: { attempts: 2, maxElapsedMs: Infinity } },
    );
    expect((await processor.processChunk('t', 0, [record!], scope())).wait?.reason).to.equal('handler-retry');
    expect(await processor.processChunk('t', 0, [record!], scope())).to.deep.equal({ done: 1 });
    expect(deadLetters.published[0]?.info).to.deep.include({ attempts: 2, error: 'still down' });
  });

  it('counts a handler timeout as a failed attempt', async () => {
    const [record] = messages(1);
    const { processor, scope, metric } = setup(
      { kind: 'record', handler: () => new Promise<void>(() => undefined) },
      { handlerTimeoutMs: 10 },
    );
    const result = await processor.processChunk('t', 0, [record!], scope());
    expect(result.wait).to.deep.include({ reason: 'handler-retry', attempts: 1 });
    expect(result.wait?.error).to.match(/did not finish within 10 ms/);
    expect(await metric(ConsumerMetricName.handlerTimeouts)).to.equal(1);
  });

  it('leaves a record interrupted by stop or revoke unmarked and uncounted, and writes the marks before it', async () => {
    const controller = new AbortController();
    const chunk = messages(3);
    const { store, processor, scope, memory } = setup({
      kind: 'record',
      handler: (_event, { changeId, signal }) => {
        if (changeId !== keyOf(chunk[1]!)) return undefined;
        controller.abort(new HandlerTimeoutError(1));
        return Promise.reject(signal.reason as Error);
      },
    });
    expect(await processor.processChunk('t', 0, chunk, scope(controller.signal))).to.deep.equal({ done: 1 });
    expect([...store.marks.keys()]).to.deep.equal([keyOf(chunk[0]!)]);
    expect(memory.retry).to.equal(undefined);
  });

  it('waits without calling the handler when the seen lookup fails (MongoDB down)', async () => {
    let calls = 0;
    const { store, processor, scope } = setup({ kind: 'record', handler: () => void calls++ });
    store.failLookups = true;
    const result = await processor.processChunk('t', 0, messages(2), scope());
    expect(result).to.deep.equal({
      done: 0,
      wait: { reason: 'mongodb', delayMs: 500, error: 'MongoDB unreachable', offset: '0' },
    });
    expect(calls).to.equal(0);
  });

  it('keeps the marks it could not write and writes them later without handling those records again', async () => {
    const handled: string[] = [];
    const { store, processor, scope, memory } = setup({
      kind: 'record',
      handler: (_event, { changeId }) => void handled.push(changeId),
    });
    const chunk = messages(2);
    store.failWrites = true;
    expect((await processor.processChunk('t', 0, chunk, scope())).done).to.equal(0);
    expect(memory.unwrittenMarks.size).to.equal(2);
    store.failWrites = false;
    expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 2 });
    expect(handled, 'each handled once').to.deep.equal(chunk.map(keyOf));
    expect(memory.unwrittenMarks.size).to.equal(0);
  });

  it('waits when the dead-letter publish fails, and publishes later without calling the handler again', async () => {
    let calls = 0;
    const [record] = messages(1);
    const { deadLetters, processor, scope } = setup({
      kind: 'record',
      handler: () => {
        calls++;
        throw new PermanentHandlerError('bad');
      },
    });
    deadLetters.fail = true;
    expect((await processor.processChunk('t', 0, [record!], scope())).wait?.reason).to.equal(
      'dead-letter-publish',
    );
    deadLetters.fail = false;
    expect(await processor.processChunk('t', 0, [record!], scope())).to.deep.equal({ done: 1 });
    expect(calls).to.equal(1);
    expect(deadLetters.published).to.have.length(1);
  });

  it('dead-letters a record that is not a change event (attempts 0) and marks it under its change ID', async () => {
    const [good] = messages(1);
    const broken: KafkaMessage = {
      ...withChangeId(good!, '82FF'),
      value: Buffer.from('not json'),
      offset: '1',
    };
    const { store, deadLetters, processor, scope } = setup({ kind: 'record', handler: () => undefined });
    expect(await processor.processChunk('t', 0, [good!, broken], scope())).to.deep.equal({ done: 2 });
    expect(deadLetters.published[0]?.info).to.deep.include({ reason: 'decode-failed', attempts: 0 });
    expect(store.marks.get('82FF')).to.deep.include({ outcome: 'dead-lettered' });
  });

  it('writes marks as it goes when they wait longer than flushIntervalMs (slow handlers re-run little after a crash)', async () => {
    const { store, processor, scope } = setup(
      { kind: 'record', handler: () => new Promise<void>((resolve) => setTimeout(resolve, 5)) },
      { markFlushIntervalMs: 0 },
    );
    await processor.processChunk('t', 0, messages(3), scope());
    expect(store.writes.map((write) => write.length)).to.deep.equal([1, 1, 1]);
  });

  describe('an event whose Extended JSON only fails when revived', () => {
    const [good] = messages(1);
    const bad: KafkaMessage = {
      ...withChangeId(good!, '82BAD'),
      offset: '1',
      value: Buffer.from(
        JSON.stringify({
          _id: { _data: '82BAD' },
          operationType: 'insert',
          fullDocument: { _id: { $oid: 'zz' } },
        }),
      ),
    };

    it('is dead-lettered as decode-failed when the handler gets it', async () => {
      const { deadLetters, processor, scope } = setup({ kind: 'record', handler: () => undefined });
      expect(await processor.processChunk('t', 0, [good!, bad], scope())).to.deep.equal({ done: 2 });
      expect(
        deadLetters.published.map((p) => [p.source.message.offset, p.info.reason, p.info.errorName]),
      ).to.deep.equal([['1', 'decode-failed', 'ChangeEventDecodeError']]);
    });

    it('costs a batch handler that never reads events nothing (they are revived lazily)', async () => {
      const handled: string[] = [];
      const { deadLetters, processor, scope } = setup({
        kind: 'batch',
        handler: (items) => void handled.push(...items.map((item) => item.changeId)),
      });
      expect(await processor.processChunk('t', 0, [good!, bad], scope())).to.deep.equal({ done: 2 });
      expect(handled).to.deep.equal([keyOf(good!), '82BAD']);
      expect(deadLetters.published).to.deep.equal([]);
    });
  });

  describe('with a batch handler', () => {
    it('hands the new changes of the chunk over in one call, in order', async () => {
      const batches: string[][] = [];
      const { store, processor, scope } = setup({
        kind: 'batch',
        handler: (items) => void batches.push(items.map((item) => item.changeId)),
      });
      const chunk = messages(5);
      store.marks.set(keyOf(chunk[2]!), {
        changeId: keyOf(chunk[2]!),
        topic: 't',
        partition: 0,
        offset: '2',
        outcome: 'handled',
      });
      expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 5 });
      expect(batches).to.deep.equal([
        [keyOf(chunk[0]!), keyOf(chunk[1]!)],
        [keyOf(chunk[3]!), keyOf(chunk[4]!)],
      ]);
      expect(store.writes).to.have.length(1);
    });

    it('on a permanent error, goes one change at a time so that only the failing change is dead-lettered', async () => {
      const chunk = messages(4);
      const poison = keyOf(chunk[2]!);
      const calls: number[] = [];
      const { deadLetters, store, processor, scope } = setup({
        kind: 'batch',
        handler: (items) => {
          calls.push(items.length);
          if (items.some((item) => item.changeId === poison))
            throw new PermanentHandlerError('mapping conflict');
        },
      });
      expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 4 });
      expect(calls).to.deep.equal([4, 1, 1, 1, 1]);
      expect(deadLetters.published.map((p) => p.source.message.offset)).to.deep.equal(['2']);
      expect([...store.marks.values()].map((mark) => mark.outcome)).to.deep.equal([
        'handled',
        'handled',
        'dead-lettered',
        'handled',
      ]);
    });

    it('retries the whole batch after a retryable error', async () => {
      let failing = true;
      const { processor, scope } = setup({
        kind: 'batch',
        handler: () => {
          if (failing) throw new Error('429');
        },
      });
      const chunk = messages(3);
      expect((await processor.processChunk('t', 0, chunk, scope())).wait).to.deep.include({
        reason: 'handler-retry',
        offset: '0',
        attempts: 1,
      });
      failing = false;
      expect(await processor.processChunk('t', 0, chunk, scope())).to.deep.equal({ done: 3 });
    });
  });
});
