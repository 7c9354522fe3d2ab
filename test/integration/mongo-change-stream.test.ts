/**
 * The change-stream behaviour the relay relies on, asserted against MongoDB's documented change-event format
 * (https://www.mongodb.com/docs/manual/reference/change-events/) with the official driver only. Runs against
 * whatever MONGODB_URI points to: a real mongod replica set or the mongo-java-server stand-in, and must pass on both.
 */
import { expect } from 'chai';
import {
  MongoClient,
  MongoServerError,
  Timestamp,
  type ChangeStream,
  type ChangeStreamDocument,
  type Collection,
  type Db,
  type ResumeToken,
} from 'mongodb';
import { mongoCapabilities } from '../support/mongo-capabilities.js';
import { startDedicatedStandIn } from '../support/standIn.js';

/** The fields the tests write (a type alias, so that it is assignable to the driver's Document). */
type TestDoc = {
  _id: number | string;
  list?: number[];
  n?: number;
  skip?: boolean;
  v?: string;
  x?: number;
  y?: string;
  z?: boolean;
};
type Event = ChangeStreamDocument<TestDoc>;
type Stream = ChangeStream<TestDoc, Event>;

const AWAIT_MS = 200;
const runId = `cs${Date.now().toString(36)}`;
let counter = 0;

describe('MongoDB change streams (documented event format)', function () {
  this.timeout(60_000);
  let client: MongoClient;
  const streams: Stream[] = [];
  const databases: Db[] = [];

  before(async () => {
    const uri = process.env.MONGODB_URI;
    if (!uri)
      throw new Error(
        'MONGODB_URI is not set: start a MongoDB (npm run services:up) and point MONGODB_URI at it',
      );
    client = await new MongoClient(uri).connect();
  });

  afterEach(async () => {
    await Promise.all(streams.splice(0).map((stream) => stream.close()));
  });

  after(async () => {
    await Promise.all(databases.map((db) => db.dropDatabase()));
    await client?.close();
  });

  /** A fresh database per test, so tests never see each other's events. */
  function freshDb(): Db {
    const db = client.db(`${runId}_${++counter}`);
    databases.push(db);
    return db;
  }

  function collectionOf(db: Db, name: string): Collection<TestDoc> {
    return db.collection<TestDoc>(name);
  }

  /** Closed after each test. */
  function tracked(stream: Stream): Stream {
    streams.push(stream);
    return stream;
  }

  /** Opens a new stream now (the aggregate runs on the first tryNext), so that later writes are seen. */
  async function opened(stream: Stream): Promise<Stream> {
    expect(await tracked(stream).tryNext()).to.equal(null);
    return stream;
  }

  async function take(stream: Stream, count: number, timeoutMs = 15_000): Promise<Event[]> {
    const events: Event[] = [];
    const deadline = Date.now() + timeoutMs;
    while (events.length < count && Date.now() < deadline && !stream.closed) {
      const event = await stream.tryNext();
      if (event) events.push(event);
    }
    return events;
  }

  function tokenOf(event: Event | undefined): ResumeToken {
    expect(event, 'event').to.not.equal(undefined);
    return (event as Event)._id;
  }

  function dataOf(token: ResumeToken): string {
    const data = (token as { _data?: unknown })._data;
    expect(data)
      .to.be.a('string')
      .and.match(/^[0-9A-F]+$/);
    return data as string;
  }

  function nsOf(event: Event): { db: string; coll?: string } | undefined {
    return 'ns' in event ? (event.ns as { db: string; coll?: string }) : undefined;
  }

  function documentKeyOf(event: Event): unknown {
    return 'documentKey' in event ? event.documentKey : undefined;
  }

  function fullDocumentOf(event: Event): unknown {
    return 'fullDocument' in event ? event.fullDocument : undefined;
  }

  /** The cluster time part of a token (`82` + 8 bytes, on mongod and the stand-in alike), as comparable hex. */
  function clusterTimeHex(token: ResumeToken): string {
    return dataOf(token).slice(2, 18);
  }

  function sameClusterTime(a: Event, b: Event): boolean {
    const [x, y] = [a.clusterTime as Timestamp, b.clusterTime as Timestamp];
    return x.equals(y);
  }

  function expectIncreasing(events: Event[]): void {
    for (let i = 1; i < events.length; i++) {
      const [before, after] = [events[i - 1] as Event, events[i] as Event];
      expect(dataOf(after._id) > dataOf(before._id), `token ${i} sorts after token ${i - 1}`).to.equal(true);
      const [t0, t1] = [before.clusterTime as Timestamp, after.clusterTime as Timestamp];
      expect(t1.t > t0.t || (t1.t === t0.t && t1.i >= t0.i), 'clusterTime does not go back').to.equal(true);
    }
  }

  it('reports insert, update, replace, delete, drop and invalidate as documented', async () => {
    const db = freshDb();
    const coll = collectionOf(db, 'docs');
    const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertOne({ _id: 1, x: 1, y: 'gone', list: [1, 2] });
    await coll.updateOne({ _id: 1 }, { $set: { x: 2 }, $unset: { y: '' }, $push: { list: 3 } });
    await coll.replaceOne({ _id: 1 }, { z: true });
    await coll.deleteOne({ _id: 1 });
    await coll.drop();

    const events = await take(stream, 6);
    expect(events.map((e) => e.operationType)).to.deep.equal([
      'insert',
      'update',
      'replace',
      'delete',
      'drop',
      'invalidate',
    ]);
    for (const event of events) {
      expect(event.clusterTime).to.be.instanceOf(Timestamp);
      expect('wallTime' in event && event.wallTime).to.be.instanceOf(Date);
      if (event.operationType !== 'invalidate')
        expect(nsOf(event)).to.deep.equal({ db: db.databaseName, coll: 'docs' });
    }
    for (const event of events.slice(0, 4)) expect(documentKeyOf(event)).to.deep.equal({ _id: 1 });
    const [insert, update, replace, remove] = events as [Event, Event, Event, Event];
    expect(fullDocumentOf(insert)).to.deep.equal({ _id: 1, x: 1, y: 'gone', list: [1, 2] });
    expect(update.operationType === 'update' && update.updateDescription).to.deep.include({
      updatedFields: { x: 2, 'list.2': 3 },
      removedFields: ['y'],
      truncatedArrays: [],
    });
    expect(fullDocumentOf(update), 'no fullDocument on updates by default').to.equal(undefined);
    expect(fullDocumentOf(replace)).to.deep.equal({ _id: 1, z: true });
    expect(fullDocumentOf(remove)).to.equal(undefined);
    expectIncreasing(events);
    expect(stream.closed || (await stream.tryNext()) === null).to.equal(true);
  });

  it('looks up the current document for updates with fullDocument: updateLookup', async () => {
    const coll = collectionOf(freshDb(), 'lookup');
    await coll.insertOne({ _id: 'a', n: 1 });
    const stream = await opened(coll.watch([], { fullDocument: 'updateLookup', maxAwaitTimeMS: AWAIT_MS }));
    await coll.updateOne({ _id: 'a' }, { $inc: { n: 1 } });
    const [update] = await take(stream, 1);
    expect(update?.operationType).to.equal('update');
    expect(fullDocumentOf(update as Event)).to.deep.equal({ _id: 'a', n: 2 });
  });

  it('gives post- and pre-images when the collection keeps them (fullDocument/BeforeChange: required)', async () => {
    const db = freshDb();
    const coll = await db.createCollection<TestDoc>('images', {
      changeStreamPreAndPostImages: { enabled: true },
    });
    await coll.insertOne({ _id: 1, v: 'old' });
    const stream = await opened(
      coll.watch([], {
        fullDocument: 'required',
        fullDocumentBeforeChange: 'required',
        maxAwaitTimeMS: AWAIT_MS,
      }),
    );
    await coll.updateOne({ _id: 1 }, { $set: { v: 'new' } });
    await coll.deleteOne({ _id: 1 });
    const [update, remove] = (await take(stream, 2)) as [Event, Event];
    expect(fullDocumentOf(update)).to.deep.equal({ _id: 1, v: 'new' });
    expect('fullDocumentBeforeChange' in update && update.fullDocumentBeforeChange).to.deep.equal({
      _id: 1,
      v: 'old',
    });
    expect('fullDocumentBeforeChange' in remove && remove.fullDocumentBeforeChange).to.deep.equal({
      _id: 1,
      v: 'new',
    });
  });

  it('continues exactly after the token with resumeAfter and startAfter', async () => {
    const coll = collectionOf(freshDb(), 'resume');
    const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    const [first] = await take(stream, 1);
    for (const option of ['resumeAfter', 'startAfter'] as const) {
      const resumed = tracked(coll.watch([], { [option]: tokenOf(first), maxAwaitTimeMS: AWAIT_MS }));
      const events = await take(resumed, 2);
      expect(events.map(documentKeyOf), option).to.deep.equal([{ _id: 2 }, { _id: 3 }]);
    }
  });

  it('starts after an invalidate with startAfter, and refuses resumeAfter an invalidate', async () => {
    const coll = collectionOf(freshDb(), 'again');
    const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertOne({ _id: 'before' });
    await coll.drop();
    const events = await take(stream, 3);
    expect(events.map((e) => e.operationType)).to.deep.equal(['insert', 'drop', 'invalidate']);
    const invalidate = tokenOf(events[2]);
    await coll.insertOne({ _id: 'after' });

    const restarted = tracked(coll.watch([], { startAfter: invalidate, maxAwaitTimeMS: AWAIT_MS }));
    const [next] = await take(restarted, 1);
    expect(next?.operationType).to.equal('insert');
    expect(documentKeyOf(next as Event)).to.deep.equal({ _id: 'after' });

    const refused = tracked(coll.watch([], { resumeAfter: invalidate, maxAwaitTimeMS: AWAIT_MS }));
    const error = await refused.tryNext().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(MongoServerError);
    expect((error as MongoServerError).code).to.equal(260); // InvalidResumeToken
  });

  it('filters and reshapes events with a user pipeline ($match, $project, $addFields, $unset, $set)', async () => {
    const coll = collectionOf(freshDb(), 'pipeline');
    const pipeline = [
      {
        $match: {
          $or: [{ 'fullDocument.n': { $in: [2, 3] } }, { operationType: 'delete' }],
          'ns.coll': 'pipeline',
        },
      },
      { $match: { $nor: [{ 'fullDocument.skip': true }] } },
      { $addFields: { tag: 'seen' } },
      { $project: { operationType: 1, 'fullDocument.n': 1, documentKey: 1, tag: 1, ns: 1 } },
      { $unset: 'ns' },
      { $set: { flag: true } },
    ];
    const stream = await opened(coll.watch(pipeline, { maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertMany([
      { _id: 1, n: 1 },
      { _id: 2, n: 2 },
      { _id: 3, n: 3, skip: true },
      { _id: 4, n: 4 },
    ]);
    await coll.deleteOne({ _id: 4 });
    const events = await take(stream, 2);
    expect(events.map((e) => e.operationType)).to.deep.equal(['insert', 'delete']);
    expect(events[0]).to.deep.include({
      fullDocument: { n: 2 },
      documentKey: { _id: 2 },
      tag: 'seen',
      flag: true,
    });
    expect(events[0]).to.not.have.property('ns');
    expect(events[0]).to.not.have.property('clusterTime');
    expect(events[1]).to.deep.include({ documentKey: { _id: 4 }, tag: 'seen' });
  });

  it('reports a high-water mark on empty batches that sorts before the events of its cluster time (postBatchResumeToken)', async () => {
    const coll = collectionOf(freshDb(), 'quiet');
    const all = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    const filtered = await opened(
      coll.watch([{ $match: { operationType: 'never' } }], { maxAwaitTimeMS: AWAIT_MS }),
    );
    const before = dataOf(filtered.resumeToken);
    await coll.insertOne({ _id: 1 });
    await coll.insertOne({ _id: 2 });
    const [first, second] = (await take(all, 2)) as [Event, Event];
    const deadline = Date.now() + 15_000;
    while (clusterTimeHex(filtered.resumeToken) < clusterTimeHex(second._id) && Date.now() < deadline)
      expect(await filtered.tryNext()).to.equal(null);
    const mark = filtered.resumeToken;
    expect(dataOf(mark) > before, 'the token advanced past the filtered writes').to.equal(true);
    expect(dataOf(mark) > dataOf(first._id), 'and past the events of earlier cluster times').to.equal(true);
    // mongod's high-water mark is "the oplog was read up to this cluster time" (a newer no-op may have moved
    // it on): it sorts before an event of the same cluster time, so resuming from it returns that event again.
    const atSecond = clusterTimeHex(mark) === clusterTimeHex(second._id);
    expect(
      dataOf(mark) < dataOf(second._id),
      'a high-water mark sorts before the event of its time',
    ).to.equal(atSecond);
    const resumed = tracked(coll.watch([], { resumeAfter: mark, maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertOne({ _id: 3 });
    const events = await take(resumed, atSecond ? 2 : 1);
    expect(events.map(documentKeyOf)).to.deep.equal(atSecond ? [{ _id: 2 }, { _id: 3 }] : [{ _id: 3 }]);
  });

  it('gives the deletes of one deleteMany shared cluster times (batched applyOps), ordered and resumable by token', async () => {
    const coll = collectionOf(freshDb(), 'batched');
    const count = 250;
    await coll.insertMany(Array.from({ length: count }, (_, i) => ({ _id: i })));
    const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    await coll.deleteMany({});
    const events = await take(stream, count, 30_000);
    expect(events.map((e) => e.operationType)).to.deep.equal(Array(count).fill('delete'));
    expectIncreasing(events);
    const sharing = events.findIndex((e, i) => i > 0 && sameClusterTime(e, events[i - 1] as Event)) - 1;
    expect(sharing, 'two deletes with one cluster time').to.be.at.least(0);
    // Resume from an event that shares its cluster time with the next one: exactly the rest follows.
    const resumed = tracked(
      coll.watch([], { resumeAfter: tokenOf(events[sharing]), maxAwaitTimeMS: AWAIT_MS }),
    );
    const rest = await take(resumed, count - sharing - 1, 30_000);
    expect(rest.map(documentKeyOf)).to.deep.equal(events.slice(sharing + 1).map(documentKeyOf));
  });

  it("gives a transaction's operations its commit cluster time, lsid and txnNumber, and an aborted one no event (transactions: the run's mongod, else a stand-in with --transactions)", async function () {
    this.timeout(120_000);
    const dedicated = mongoCapabilities().transactionEvents
      ? undefined
      : await startDedicatedStandIn({ transactions: true });
    const txClient = dedicated ? await new MongoClient(dedicated.uri).connect() : client;
    const db = txClient.db(`${runId}_tx_${++counter}`);
    try {
      const coll = db.collection<TestDoc>('tx');
      await coll.insertOne({ _id: 'setup' });
      const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
      const session = txClient.startSession();
      try {
        await session.withTransaction(async () => {
          await coll.insertOne({ _id: 'a' }, { session });
          await coll.updateOne({ _id: 'setup' }, { $set: { x: 1 } }, { session });
          await coll.insertOne({ _id: 'b' }, { session });
        });
        session.startTransaction();
        await coll.insertOne({ _id: 'never' }, { session });
        await session.abortTransaction();
      } finally {
        await session.endSession();
      }
      await coll.insertOne({ _id: 'after' });
      const events = await take(stream, 4);
      expect(events.map(documentKeyOf)).to.deep.equal([
        { _id: 'a' },
        { _id: 'setup' },
        { _id: 'b' },
        { _id: 'after' },
      ]);
      expectIncreasing(events);
      const [a, setup, b, after] = events as [Event, Event, Event, Event];
      expect(sameClusterTime(a, setup) && sameClusterTime(setup, b), 'one cluster time').to.equal(true);
      const txn = (e: Event) => e as Event & { lsid?: { id: unknown }; txnNumber?: unknown };
      for (const event of [a, setup, b]) {
        expect(txn(event).lsid?.id, 'lsid').to.deep.equal(txn(a).lsid?.id).and.not.equal(undefined);
        expect(Number(txn(event).txnNumber), 'txnNumber').to.be.greaterThan(0);
      }
      expect(txn(after).lsid, 'no lsid outside a transaction').to.equal(undefined);
      expect(await coll.findOne({ _id: 'never' }), 'the aborted insert was undone').to.equal(null);
      const resumed = tracked(coll.watch([], { resumeAfter: tokenOf(a), maxAwaitTimeMS: AWAIT_MS }));
      expect((await take(resumed, 3)).map(documentKeyOf)).to.deep.equal([
        { _id: 'setup' },
        { _id: 'b' },
        { _id: 'after' },
      ]);
    } finally {
      await Promise.all(streams.splice(0).map((stream) => stream.close()));
      await db.dropDatabase().catch(() => undefined);
      if (dedicated) {
        await txClient.close();
        await dedicated.stop();
      }
    }
  });

  it('refuses an event over 16 MB with BSONObjectTooLarge (10334), and splits it with $changeStreamSplitLargeEvent into resumable fragments', async function () {
    this.timeout(240_000);
    const coll = collectionOf(freshDb(), 'large');
    const size = 9 * 1024 * 1024; // two copies (updatedFields and fullDocument) make an event of about 18 MB
    await coll.insertOne({ _id: 1, v: 'x'.repeat(size) });
    const options = { fullDocument: 'updateLookup' as const, maxAwaitTimeMS: AWAIT_MS };
    const split = [{ $changeStreamSplitLargeEvent: {} }];
    const plain = await opened(coll.watch([], options));
    const fragmented = await opened(coll.watch(split, options));
    await coll.updateOne({ _id: 1 }, { $set: { v: 'y'.repeat(size) } });

    const error = await take(plain, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'an 18 MB event without the split stage').to.be.instanceOf(MongoServerError);
    expect((error as MongoServerError).code).to.equal(10334); // BSONObjectTooLarge

    const fragments = (await take(fragmented, 2, 60_000)) as (Event & { splitEvent?: unknown })[];
    expect(fragments.map((f) => f.splitEvent)).to.deep.equal([
      { fragment: 1, of: 2 },
      { fragment: 2, of: 2 },
    ]);
    expect(dataOf(fragments[1]!._id) > dataOf(fragments[0]!._id), 'each fragment has its own token').to.equal(
      true,
    );
    const whole: Record<string, unknown> = {};
    for (const { _id: _token, splitEvent: _split, ...fields } of fragments) Object.assign(whole, fields);
    expect(whole.operationType).to.equal('update');
    expect(whole.documentKey).to.deep.equal({ _id: 1 });
    expect((whole.fullDocument as { v: string }).v).to.have.length(size);
    const updated = (whole.updateDescription as { updatedFields: { v: string } }).updatedFields;
    expect(updated.v).to.equal('y'.repeat(size));

    const fromFragment = { ...options, resumeAfter: tokenOf(fragments[0]) };
    const resumed = tracked(coll.watch(split, fromFragment));
    const [next] = (await take(resumed, 1, 60_000)) as (Event & { splitEvent?: unknown })[];
    expect(next?.splitEvent, 'resuming from fragment 1 returns fragment 2').to.deep.equal({
      fragment: 2,
      of: 2,
    });
    const refused = await tracked(coll.watch([], fromFragment))
      .tryNext()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((refused as MongoServerError).code, 'a fragment token without the split stage').to.equal(280);
  });

  it('runs update pipelines with $$NOW, one value per command, also for upserts and findAndModify', async () => {
    const coll = freshDb().collection<
      TestDoc & { at?: Date; expiresAt?: Date; owner?: string; live?: boolean }
    >('lease');
    await coll.insertOne({ _id: 'c', n: 1 });
    const stream = await opened(coll.watch([], { maxAwaitTimeMS: AWAIT_MS }));
    const t0 = Date.now();
    await coll.updateOne({ _id: 'c' }, [
      { $set: { at: '$$NOW', expiresAt: { $add: ['$$NOW', 60_000] }, n: { $add: ['$n', 1] } } },
    ]);
    const t1 = Date.now();
    const doc = await coll.findOne({ _id: 'c' });
    expect(doc?.n).to.equal(2);
    expect(doc?.at).to.be.instanceOf(Date);
    expect(doc!.expiresAt!.getTime() - doc!.at!.getTime(), 'one $$NOW per command').to.equal(60_000);
    // The server's clock: on this machine it is ours, within scheduling.
    expect(doc!.at!.getTime()).to.be.within(t0 - 2_000, t1 + 2_000);

    const live = await coll.updateOne({ _id: 'c', $expr: { $gt: ['$expiresAt', '$$NOW'] } }, [
      { $set: { live: true } },
    ]);
    expect(live.modifiedCount, '$$NOW in a query $expr').to.equal(1);
    await coll.updateOne({ _id: 'new' }, [{ $set: { at: '$$NOW' } }], { upsert: true });
    expect((await coll.findOne({ _id: 'new' }))?.at).to.be.instanceOf(Date);
    const taken = await coll.findOneAndUpdate({ _id: 'c', live: true }, [{ $set: { owner: 'me' } }], {
      returnDocument: 'after',
    });
    expect(taken).to.deep.include({ _id: 'c', owner: 'me', live: true });

    const events = await take(stream, 4);
    expect(events.map((e) => e.operationType)).to.deep.equal(['update', 'update', 'insert', 'update']);
    const fields = (e: Event | undefined) =>
      Object.keys((e as { updateDescription: { updatedFields: object } }).updateDescription.updatedFields);
    expect(fields(events[0])).to.include.members(['at', 'expiresAt', 'n']);
    expect(fields(events[3])).to.deep.equal(['owner']);
  });

  it('waits on an empty getMore for maxAwaitTimeMS, and wakes up as soon as an event arrives', async () => {
    const coll = collectionOf(freshDb(), 'await');
    const idle = await opened(coll.watch([], { maxAwaitTimeMS: 400 }));
    let started = Date.now();
    expect(await idle.tryNext()).to.equal(null);
    expect(Date.now() - started).to.be.within(300, 5_000);

    // Opened from idle's token: no race with the insert below, and no 10 s wait to open it.
    const waiting = tracked(coll.watch([], { resumeAfter: idle.resumeToken, maxAwaitTimeMS: 10_000 }));
    started = Date.now();
    const next = waiting.next();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await coll.insertOne({ _id: 'wake' });
    expect(documentKeyOf(await next)).to.deep.equal({ _id: 'wake' });
    expect(Date.now() - started, 'woken by the insert, not by the timeout').to.be.below(5_000);
  });

  it('streams a whole database (db.watch), ending with dropDatabase and invalidate', async () => {
    const db = freshDb();
    const stream = await opened(db.watch<TestDoc, Event>([], { maxAwaitTimeMS: AWAIT_MS }));
    await collectionOf(db, 'a').insertOne({ _id: 'a' });
    await collectionOf(db, 'b').insertOne({ _id: 'b' });
    const inserts = await take(stream, 2);
    expect(inserts.map(nsOf)).to.deep.equal([
      { db: db.databaseName, coll: 'a' },
      { db: db.databaseName, coll: 'b' },
    ]);
    await db.dropDatabase();
    const rest = await take(stream, 4);
    expect(rest.map((e) => e.operationType)).to.deep.equal(['drop', 'drop', 'dropDatabase', 'invalidate']);
    expect(nsOf(rest[2] as Event)).to.deep.equal({ db: db.databaseName });
  });

  it('streams the whole deployment (client.watch) without admin, config and local', async () => {
    const [one, two] = [freshDb(), freshDb()];
    const stream = await opened(client.watch<TestDoc, Event>([], { maxAwaitTimeMS: AWAIT_MS }));
    const admin = collectionOf(client.db('admin'), `${runId}_probe`);
    await admin.insertOne({ _id: 'admin' });
    await collectionOf(one, 'c').insertOne({ _id: 1 });
    await collectionOf(two, 'c').insertOne({ _id: 2 });
    await admin.drop();
    const ours = new Set([one.databaseName, two.databaseName, 'admin', 'config', 'local']);
    const seen: Event[] = [];
    const deadline = Date.now() + 15_000;
    while (seen.length < 2 && Date.now() < deadline) {
      const event = await stream.tryNext();
      if (event && ours.has(nsOf(event)?.db ?? '')) seen.push(event);
    }
    expect(seen.map(nsOf)).to.deep.equal([
      { db: one.databaseName, coll: 'c' },
      { db: two.databaseName, coll: 'c' },
    ]);
  });

  it('fails with ChangeStreamHistoryLost (286) when resuming before the oldest oplog entry', async () => {
    const coll = collectionOf(freshDb(), 'lost');
    const startAtOperationTime = new Timestamp({ t: 1_000_000_000, i: 1 }); // 2001
    const stream = tracked(coll.watch([], { startAtOperationTime, maxAwaitTimeMS: AWAIT_MS }));
    const error = await stream.tryNext().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(MongoServerError);
    expect((error as MongoServerError).code).to.equal(286);
  });
});
