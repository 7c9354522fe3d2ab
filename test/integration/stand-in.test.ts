/**
 * The mongo-java-server stand-in itself, where it must behave like mongod but a test cannot make a real mongod show
 * it (an oplog of a few entries, a no-op interval of seconds) or where only the stand-in can differ (options it does
 * not implement). Each test starts a stand-in of its own, so these run next to a real mongod too.
 */
import { expect } from 'chai';
import { MongoClient, MongoServerError, type ChangeStream, type Document } from 'mongodb';
import type { MongoService } from '../../scripts/services/mongo.js';
import { startDedicatedStandIn } from '../support/standIn.js';

async function failure(attempt: Promise<unknown>): Promise<MongoServerError> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(MongoServerError);
  return error as MongoServerError;
}

describe('the mongo-java-server stand-in (stand-in only: what a real mongod cannot be made to show in a test)', function () {
  this.timeout(120_000);
  let server: MongoService | undefined;
  let client: MongoClient | undefined;
  const streams: ChangeStream[] = [];

  async function connect(options: Parameters<typeof startDedicatedStandIn>[0]): Promise<MongoClient> {
    server = await startDedicatedStandIn(options);
    client = await new MongoClient(server.uri).connect();
    return client;
  }

  afterEach(async () => {
    await Promise.all(streams.splice(0).map((s) => s.close()));
    await client?.close();
    await server?.stop();
    [client, server] = [undefined, undefined];
  });

  it('fails a live cursor that fell behind the oplog cap with CappedPositionLost (136), and a resume from there with ChangeStreamHistoryLost (286)', async () => {
    const mongo = await connect({ oplogMaxEntries: 20 });
    const items = mongo.db('capped').collection<{ _id: number }>('items');
    const stream = items.watch([], { maxAwaitTimeMS: 100 });
    streams.push(stream);
    expect(await stream.tryNext()).to.equal(null);
    await items.insertOne({ _id: 0 });
    const first = await stream.next();
    for (let i = 1; i <= 50; i++) await items.insertOne({ _id: i }); // 50 entries: the cap keeps the last 20
    const behind = await failure(stream.tryNext());
    expect(behind.code, behind.message).to.equal(136);
    expect(behind.codeName).to.equal('CappedPositionLost');
    const resumed = items.watch([], { resumeAfter: first._id, maxAwaitTimeMS: 100 });
    streams.push(resumed);
    expect((await failure(resumed.tryNext())).code).to.equal(286);
  });

  it('caps its oplog by size as mongod does (--oplogSize): the oldest entries go once their BSON passes the cap, however few they are', async () => {
    const mongo = await connect({ oplogSizeMb: 1 });
    const items = mongo.db('sized').collection<{ _id: number; pad: string }>('items');
    const pad = 'x'.repeat(200 * 1024);
    const stream = items.watch([], { maxAwaitTimeMS: 100 });
    streams.push(stream);
    expect(await stream.tryNext()).to.equal(null);
    const tokens: Document[] = [];
    // Eight 200 KB documents, far below the entry cap: a 1 MB log keeps the newest five.
    for (let i = 0; i < 8; i++) {
      await items.insertOne({ _id: i, pad });
      tokens.push((await stream.next())._id as Document);
    }
    const fromOldest = items.watch([], { resumeAfter: tokens[0], maxAwaitTimeMS: 100 });
    streams.push(fromOldest);
    expect((await failure(fromOldest.tryNext())).code, 'the first entry is gone').to.equal(286);
    const fromRecent = items.watch([], { resumeAfter: tokens[5], maxAwaitTimeMS: 100 });
    streams.push(fromRecent);
    expect(((await fromRecent.next()) as Document).documentKey, 'the newest entries are kept').to.deep.equal({
      _id: 6,
    });
  });

  it("moves an idle stream's token only with oplog writes and the periodic no-op, never with the clock", async () => {
    const mongo = await connect({ noopIntervalSeconds: 3 });
    const other = mongo.db('idle').collection<{ _id: number }>('other');
    const watched = mongo.db('idle').collection<{ _id: number }>('watched');
    const stream = watched.watch([], { maxAwaitTimeMS: 200 });
    streams.push(stream);
    await other.insertOne({ _id: 1 }); // the next no-op is 3 s after this write
    const written = Date.now();
    expect(await stream.tryNext()).to.equal(null);
    const afterWrite = (stream.resumeToken as Document)._data as string;
    while (Date.now() - written < 1500) expect(await stream.tryNext()).to.equal(null);
    expect((stream.resumeToken as Document)._data, 'no write, no no-op yet: the token stays').to.equal(
      afterWrite,
    );
    const deadline = Date.now() + 10_000;
    while ((stream.resumeToken as Document)._data === afterWrite && Date.now() < deadline)
      expect(await stream.tryNext()).to.equal(null);
    const afterNoop = (stream.resumeToken as Document)._data as string;
    expect(afterNoop > afterWrite, 'the no-op moved it').to.equal(true);
    expect(Date.now() - written, 'not before the no-op interval').to.be.at.least(2_500);
  });

  it('reports the high-water mark of the newest oplog entry, sorting before its events, when nothing else writes', async () => {
    const mongo = await connect({});
    const items = mongo.db('hwm').collection<{ _id: number }>('items');
    const all = items.watch([], { maxAwaitTimeMS: 100 });
    const filtered = items.watch([{ $match: { operationType: 'never' } }], { maxAwaitTimeMS: 100 });
    streams.push(all, filtered);
    expect(await all.tryNext()).to.equal(null);
    expect(await filtered.tryNext()).to.equal(null);
    await items.insertOne({ _id: 1 });
    await items.insertOne({ _id: 2 });
    await all.next();
    const second = (await all.next())._id as { _data: string };
    const time = (token: unknown) => ((token as { _data: string })._data ?? '').slice(2, 18);
    const deadline = Date.now() + 5_000;
    while (time(filtered.resumeToken) < time(second) && Date.now() < deadline)
      expect(await filtered.tryNext()).to.equal(null);
    const mark = filtered.resumeToken as { _data: string };
    // Only oplog writes move it (the next no-op is 10 s away): it is the second insert's time, not the clock's.
    expect(time(mark), 'the cluster time of the newest entry').to.equal(time(second));
    expect(mark._data < second._data, 'a high-water mark sorts before the event of its time').to.equal(true);
    const resumed = items.watch([], { resumeAfter: mark, maxAwaitTimeMS: 100 });
    streams.push(resumed);
    expect(
      ((await resumed.next()) as { documentKey?: { _id: number } }).documentKey?._id,
      'so resuming from it returns it',
    ).to.equal(2);
  });

  it('refuses change stream options it does not implement instead of ignoring them', async () => {
    const mongo = await connect({});
    const items = mongo.db('options').collection('items');
    for (const option of ['showExpandedEvents', 'showRawUpdateDescription'] as const) {
      const stream = items.watch([], { [option]: true, maxAwaitTimeMS: 100 });
      streams.push(stream);
      const error = await failure(stream.tryNext());
      expect(error.code, option).to.equal(238);
      expect(error.message).to.contain(option);
    }
    const plain = items.watch([], { showExpandedEvents: false, maxAwaitTimeMS: 100 });
    streams.push(plain);
    expect(await plain.tryNext(), 'false is what the stand-in does anyway').to.equal(null);
  });
});
