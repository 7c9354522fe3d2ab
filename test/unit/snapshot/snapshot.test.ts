import { expect } from 'chai';
import { Binary, Code, DBRef, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp } from 'mongodb';
import pino from 'pino';
import { Checkpointer } from '../../../src/checkpoint/checkpointer.js';
import type { CheckpointWrite } from '../../../src/checkpoint/checkpointStore.js';
import { ItemBatchBuilder, decodeItemBatch } from '../../../src/pipeline/itemBatch.js';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';
import {
  ID_TYPE_CLASSES,
  OTHER_TYPES_CLASS,
  classIndexOf,
  className,
  decodeId,
  encodeId,
  nextRange,
  typeClassOf,
} from '../../../src/snapshot/idOrder.js';
import { decideSnapshot, estimatedRemaining, newPlan } from '../../../src/snapshot/snapshotPlan.js';
import {
  SNAPSHOT_STAND_IN_TOKEN,
  isSnapshotChangeId,
  snapshotChangeId,
  snapshotItem,
} from '../../../src/snapshot/snapshotRecord.js';
import { snapshotProgressUpdate } from '../../../src/snapshot/snapshotStore.js';

describe('snapshot: _id order (idOrder)', () => {
  it('puts each _id type in its BSON comparison class, in the documented order', () => {
    const classOf = (id: unknown) => ID_TYPE_CLASSES[typeClassOf(id)]?.[0] ?? 'other';
    expect(classOf(new MinKey())).to.equal('minKey');
    expect(classOf(null)).to.equal('null');
    expect(classOf(3)).to.equal('double');
    expect(classOf(Long.fromNumber(2))).to.equal('double');
    expect(classOf('a')).to.equal('string');
    expect(classOf({ a: 1 })).to.equal('object');
    expect(classOf(new Binary(Buffer.from([1])))).to.equal('binData');
    expect(classOf(new ObjectId())).to.equal('objectId');
    expect(classOf(true)).to.equal('bool');
    expect(classOf(new Date())).to.equal('date');
    expect(classOf(new Timestamp({ t: 1, i: 1 }))).to.equal('timestamp');
    expect(classOf(new MaxKey())).to.equal('maxKey');
  });

  it('resumes inside the class of the last _id with $gt (type-bracketed), never across classes', () => {
    expect(nextRange({ started: true, lastId: 'b' }, null)).to.deep.equal({
      classIndex: 3,
      filter: { _id: { $type: ['string'], $gt: 'b' } },
    });
    // The class exhausted: the next class from its start, whatever the last _id was.
    expect(nextRange({ started: true, lastId: 'b' }, 3)).to.deep.equal({
      classIndex: 4,
      filter: { _id: { $type: ['object'] } },
    });
    expect(nextRange({ started: false }, null)?.filter).to.deep.equal({ _id: { $type: ['minKey'] } });
  });

  it('skips past single-valued classes, scans deprecated types last, then ends', () => {
    expect(nextRange({ started: true, lastId: null }, null)?.classIndex).to.equal(2);
    const other = nextRange({ started: true, lastId: new MaxKey() }, null);
    expect(other?.classIndex).to.equal(OTHER_TYPES_CLASS);
    expect(other?.filter).to.have.nested.property('_id.$not.$type');
    expect(other).to.not.have.property('min');
    expect(nextRange({ started: true, lastId: new MaxKey() }, OTHER_TYPES_CLASS)).to.equal(null);
  });

  it('resumes inside the deprecated types where it stopped: from an index bound at the last _id, skipping it', () => {
    const code = new Code('function () {}');
    expect(nextRange({ started: true, lastId: code }, null)).to.deep.equal({
      classIndex: OTHER_TYPES_CLASS,
      filter: { _id: { $not: { $type: ID_TYPE_CLASSES.flat() } } },
      min: { _id: code },
      skipIdJson: encodeId(code),
    });
  });

  it("resumes in the class the cursor recorded, not the decoded _id's (a Symbol comes back as a string, a DBPointer as a DBRef)", () => {
    // Derived from the decoded value these would resume in the string and object classes and copy
    // every class after them again.
    const symbol = nextRange({ started: true, lastId: 'sym', classIndex: OTHER_TYPES_CLASS }, null);
    expect(symbol).to.deep.include({ classIndex: OTHER_TYPES_CLASS, min: { _id: 'sym' } });
    expect(symbol?.skipIdJson).to.equal(encodeId('sym'));
    const ref = new DBRef('items', new ObjectId());
    const pointer = nextRange({ started: true, lastId: ref, classIndex: OTHER_TYPES_CLASS }, null);
    expect(pointer).to.deep.include({ classIndex: OTHER_TYPES_CLASS, min: { _id: ref } });
    // Cursors written before the class was recorded still resume by the decoded value.
    expect(nextRange({ started: true, lastId: 'b' }, null)?.classIndex).to.equal(3);
  });

  it('names the classes in the cursor by their first alias, and reads back only names it knows', () => {
    for (let i = 0; i <= OTHER_TYPES_CLASS; i++) expect(classIndexOf(className(i))).to.equal(i);
    expect(className(OTHER_TYPES_CLASS)).to.equal('other');
    expect(className(3)).to.equal('string');
    expect(classIndexOf('symbol')).to.equal(undefined);
    expect(classIndexOf(undefined)).to.equal(undefined);
  });

  it('keeps the exact _id type through the checkpoint (canonical Extended JSON)', () => {
    const big = Long.fromString('9007199254740993');
    expect((decodeId(encodeId(big)) as Long).toString()).to.equal('9007199254740993');
    expect(decodeId(encodeId({ a: 1, b: 'x' }))).to.deep.equal({ a: new Int32(1), b: 'x' });
  });
});

describe('snapshot: plan and decision', () => {
  const targets = [{ kind: 'collection' as const, db: 'shop', coll: 'orders' }];
  const none = () => [];

  it('never: no copy; initial: a copy only without a stored position', () => {
    expect(decideSnapshot(null, 'never', targets, none).kind).to.equal('none');
    expect(decideSnapshot(null, 'initial', targets, none)).to.include({ kind: 'new', reason: 'initial' });
    expect(decideSnapshot({ token: { _data: '82' } }, 'initial', targets, none).kind).to.equal('none');
    expect(
      decideSnapshot({ startAt: new Timestamp({ t: 1, i: 1 }) }, 'when-needed', targets, none).kind,
    ).to.equal('none');
  });

  it('always continues a running copy, and performs a request', () => {
    const plan = newPlan('initial', new Timestamp({ t: 7, i: 2 }), 0, []);
    const running = { ...plan, state: 'running' as const, startedAt: new Date() };
    expect(
      decideSnapshot({ token: { _data: '82' }, snapshot: running }, 'never', targets, none).kind,
    ).to.equal('resume');
    const request = { targets: ['shop.orders'], requestedAt: new Date(), requestedBy: 'me' };
    expect(
      decideSnapshot({ token: { _data: '82' }, snapshotRequest: request }, 'never', targets, () => targets),
    ).to.deep.equal({ kind: 'new', reason: 'requested', targets });
  });

  it('names a plan by its start cluster time and number, and estimates what remains', () => {
    const plan = newPlan('initial', new Timestamp({ t: 7, i: 2 }), 3, [
      { db: 'a', coll: 'x', estimated: 100 },
      { db: 'a', coll: 'y', estimated: 50 },
    ]);
    expect(plan.id).to.equal('7.2-4');
    expect(estimatedRemaining(plan, { index: 0, copied: 40 })).to.equal(110);
    expect(estimatedRemaining(plan, { index: 1, copied: 120 })).to.equal(30);
    expect(estimatedRemaining(plan, { index: 2, copied: 150, done: true })).to.equal(0);
  });
});

describe('snapshot: records', () => {
  const context = {
    snapshotId: '7.2-1',
    clusterTime: new Timestamp({ t: 7, i: 2 }),
    token: SNAPSHOT_STAND_IN_TOKEN,
    router: new TopicRouter('cdc.{db}.{coll}', { level: 'deployment' }),
    record: { format: 'relaxed' as const, partitionBy: 'document' as const },
  };

  it('has a stable change ID that is never a resume token and differs between snapshots', () => {
    const id = snapshotChangeId('7.2-1', 'shop.orders', encodeId('k1'));
    expect(id).to.equal('snapshot:7.2-1:shop.orders:"k1"');
    expect(id).to.equal(snapshotChangeId('7.2-1', 'shop.orders', encodeId('k1')));
    expect(id).to.not.equal(snapshotChangeId('9.1-2', 'shop.orders', encodeId('k1')));
    expect(isSnapshotChangeId(id)).to.equal(true);
    expect(/^[0-9A-F]+$/.test(id)).to.equal(false);
  });

  it('is a record of the same contract: topic, headers, partition key, snapshot operation type and cluster time', () => {
    const item = snapshotItem({ _id: 5, name: 'n' }, 'shop', 'orders', { index: 0, copied: 1 }, context);
    expect(item.kind).to.equal('publish');
    if (item.kind !== 'publish') return;
    const r = item.record;
    expect(r.topic).to.equal('cdc.shop.orders');
    expect(r.key).to.equal('snapshot:7.2-1:shop.orders:{"$numberInt":"5"}');
    expect(r.headers).to.include({
      'change-id': r.key,
      'operation-type': 'snapshot',
      ns: 'shop.orders',
      'document-key': '{"_id":{"$numberInt":"5"}}',
      'cluster-time': '7.2',
    });
    expect(r.partitionKey.toString()).to.equal('shop.orders\u0000{"_id":{"$numberInt":"5"}}');
    const value = JSON.parse(String(r.value)) as Record<string, unknown>;
    expect(value).to.deep.include({ operationType: 'snapshot', fullDocument: { _id: 5, name: 'n' } });
    expect(value.documentKey).to.deep.equal({ _id: 5 });
  });

  it('carries its cursor across the thread boundary (item batches)', () => {
    const item = snapshotItem(
      { _id: 'a' },
      'shop',
      'orders',
      { index: 2, lastIdJson: encodeId('a'), copied: 9 },
      context,
    );
    const builder = new ItemBatchBuilder(4, 1024);
    builder.add(item);
    const [back] = decodeItemBatch(builder.take().message);
    expect(back!.position.snapshot).to.deep.equal({ index: 2, lastIdJson: encodeId('a'), copied: 9 });
  });

  it('stores progress as the cursor and the last _id, and marks the copy done', () => {
    const at = new Date(0);
    expect(
      snapshotProgressUpdate({ index: 1, lastIdJson: encodeId('a'), copied: 3 }, false, at),
    ).to.deep.equal({
      'snapshot.cursor': { index: 1, lastIdJson: encodeId('a'), copied: 3 },
      'snapshot.lastId': 'a',
    });
    expect(snapshotProgressUpdate(undefined, true, at)).to.deep.equal({
      'snapshot.state': 'done',
      'snapshot.completedAt': at,
    });
  });
});

describe('snapshot: checkpointer', () => {
  function setUp() {
    const writes: CheckpointWrite[] = [];
    const cp = new Checkpointer(
      { write: (_o: string, w: CheckpointWrite) => (writes.push(w), Promise.resolve(new Date())) },
      'me',
      { mode: 'continuous', maxEvents: 100, maxDelayMs: 50, heartbeatMs: 60_000 },
      { fingerprint: 'f', watch: ['a.b'] },
      pino({ level: 'silent' }),
      { onFatal: () => {} },
    );
    return { cp, writes };
  }
  const snapshotProgress = (copied: number, done = false) => ({
    position: {
      token: SNAPSHOT_STAND_IN_TOKEN,
      clusterTime: null,
      snapshot: { index: 0, copied, ...(done ? { done } : {}) },
    },
    published: done ? 0 : 1,
    filtered: 0,
    deadLettered: 0,
  });

  it('writes snapshot progress without touching the stream position', async () => {
    const { cp, writes } = setUp();
    cp.snapshotRunning = true;
    cp.record(snapshotProgress(1));
    await cp.flush();
    expect(writes).to.have.length(1);
    expect(writes[0]).to.include({ snapshotOnly: true });
    expect(writes[0]!.snapshot).to.deep.equal({ index: 0, copied: 1 });
    expect(cp.persisted).to.equal(null);
  });

  it('completes the copy with the first stream position written, even when the window coalesced the end away', async () => {
    const { cp, writes } = setUp();
    cp.snapshotRunning = true;
    cp.record({
      position: { token: { _data: '8201' }, clusterTime: null },
      published: 5,
      filtered: 0,
      deadLettered: 0,
    });
    await cp.flush();
    expect(writes[0]).to.include({ snapshotDone: true });
    expect(writes[0]!.snapshotOnly).to.equal(undefined);
    expect(cp.snapshotRunning).to.equal(false);
    cp.record({
      position: { token: { _data: '8202' }, clusterTime: null },
      published: 1,
      filtered: 0,
      deadLettered: 0,
    });
    await cp.flush();
    expect(writes[1]!.snapshotDone).to.equal(undefined);
  });

  it('writes the end of a copy at once, though it carries no event', async () => {
    const { cp, writes } = setUp();
    cp.snapshotRunning = true;
    cp.record(snapshotProgress(4, true));
    await new Promise((resolve) => setImmediate(resolve));
    await cp.flush();
    expect(writes.map((w) => w.snapshot?.done)).to.deep.equal([true]);
    expect(cp.snapshotRunning).to.equal(false);
  });
});
