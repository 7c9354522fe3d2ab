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

  it('filters and reshapes events with a user pipeline ($match, $project, $addFields, $unset)', async () => {
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
    expect(events[0]).to.deep.include({ fullDocument: { n: 2 }, documentKey: { _id: 2 }, tag: 'seen' });
    expect(events[0]).to.not.have.property('ns');
    expect(events[0]).to.not.have.property('clusterTime');
    expect(events[1]).to.deep.include({ documentKey: { _id: 4 }, tag: 'seen' });
  });

  it('advances the resume token on empty batches while nothing matches (postBatchResumeToken)', async () => {
    const coll = collectionOf(freshDb(), 'quiet');
    const stream = await opened(
      coll.watch([{ $match: { operationType: 'never' } }], { maxAwaitTimeMS: AWAIT_MS }),
    );
    const before = dataOf(stream.resumeToken);
    await coll.insertMany([{ _id: 1 }, { _id: 2 }]);
    const deadline = Date.now() + 15_000;
    while (dataOf(stream.resumeToken) <= before && Date.now() < deadline)
      expect(await stream.tryNext()).to.equal(null);
    const advanced = stream.resumeToken;
    expect(dataOf(advanced) > before, 'token advanced past the filtered writes').to.equal(true);

    // Resuming from the advanced token must not replay the writes it covered.
    const resumed = await opened(coll.watch([], { resumeAfter: advanced, maxAwaitTimeMS: AWAIT_MS }));
    await coll.insertOne({ _id: 3 });
    const [next] = await take(resumed, 1);
    expect(documentKeyOf(next as Event)).to.deep.equal({ _id: 3 });
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
