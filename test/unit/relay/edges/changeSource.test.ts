/**
 * ChangeSource's position rules, driven by a scripted change stream (the driver's ChangeStream reduced to
 * tryNext/resumeToken/close). What the server does is proven by the integration tests; these pin down
 * what the source makes of it: the start it reports, where it reopens, what it never hands out.
 */
import { expect } from 'chai';
import pino from 'pino';
import { BSON, MongoServerError, type ChangeStreamOptions, type Document, type MongoClient } from 'mongodb';
import { ChangeSource, openDriverStream, type SourceItem } from '../../../../src/source/changeSource.js';

type Step = Document | null | Error;

/** A change stream that plays `steps` (null: an empty batch) and then returns empty batches. */
class ScriptedStream {
  resumeToken: { _data: string } | undefined;
  closed = false;
  constructor(
    private readonly steps: Step[],
    private readonly batchTokens: Map<number, string>,
  ) {}
  private i = 0;
  async tryNext(): Promise<Document | null> {
    const n = this.i++;
    const step = n < this.steps.length ? this.steps[n]! : null;
    if (step instanceof Error) throw step;
    if (step === null) {
      const pbrt = this.batchTokens.get(n);
      if (pbrt) this.resumeToken = { _data: pbrt };
      return null;
    }
    this.resumeToken = step._id as { _data: string };
    return step;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A client whose every watch() opens the next scripted stream, recording the options it was opened with. */
function scriptedClient(streams: ScriptedStream[]) {
  const opened: { pipeline: Document[]; options: ChangeStreamOptions }[] = [];
  const watch = (pipeline: Document[], options: ChangeStreamOptions) => {
    opened.push({ pipeline, options });
    const s = streams.shift();
    if (!s) throw new Error('no more scripted streams');
    return s;
  };
  const client = { db: () => ({ collection: () => ({ watch }) }) } as unknown as MongoClient;
  return { client, opened };
}

const ts = (t: number, i: number) => new BSON.Timestamp({ t, i });
const change = (n: number, extra: Document = {}): Document => ({
  _id: { _data: `82${String(n).padStart(16, '0')}` },
  operationType: 'update',
  clusterTime: ts(1700000000, n),
  ns: { db: 'd', coll: 'c' },
  documentKey: { _id: n },
  ...extra,
});

function source(client: MongoClient, extra: Partial<ConstructorParameters<typeof ChangeSource>[2]> = {}) {
  return new ChangeSource(
    client,
    { now: true },
    {
      scope: { level: 'collection', db: 'd', coll: 'c' },
      pipeline: [],
      fullDocument: 'updateLookup',
      fullDocumentBeforeChange: 'off',
      maxAwaitTimeMS: 10,
      logger: pino({ level: 'silent' }),
      splitLargeEvents: false,
      backoff: { initialMs: 1, maxMs: 1 },
      // The scripted streams stand in for the driver's ChangeStream (the raw stream is the same
      // interface, proven against the server by the integration tests).
      openStream: openDriverStream,
      ...extra,
    },
  );
}

describe('change source positions', () => {
  describe('startingPosition', () => {
    it('resolves "now" to the opened stream\'s first post-batch resume token', async () => {
      const { client } = scriptedClient([new ScriptedStream([null], new Map([[0, '82PBRT01']]))]);
      expect(await source(client).startingPosition()).to.deep.equal({ startAfter: { _data: '82PBRT01' } });
    });

    it("resolves it to the first change's cluster time (inclusive) when a change arrived in the first batch — and hands that change out first", async () => {
      const { client } = scriptedClient([new ScriptedStream([change(1), change(2)], new Map())]);
      const s = source(client);
      expect(await s.startingPosition()).to.deep.equal({ startAtOperationTime: ts(1700000000, 1) });
      const first = (await s.next()) as Extract<SourceItem, { kind: 'change' }>;
      expect(first.token).to.deep.equal(change(1)._id);
      const second = (await s.next()) as Extract<SourceItem, { kind: 'change' }>;
      expect(second.token).to.deep.equal(change(2)._id);
    });

    it('reopens after a transient error from the resolved start, never from a later "now"', async () => {
      const network = new MongoServerError({ ok: 0, code: 91, codeName: 'ShutdownInProgress', errmsg: 'x' });
      const { client, opened } = scriptedClient([
        new ScriptedStream([null, network], new Map([[0, '82PBRT01']])),
        new ScriptedStream([change(3)], new Map()),
      ]);
      const s = source(client);
      await s.startingPosition();
      expect(((await s.next()) as Extract<SourceItem, { kind: 'change' }>).token).to.deep.equal(
        change(3)._id,
      );
      expect(opened[1]!.options.startAfter).to.deep.equal({ _data: '82PBRT01' });
    });
  });

  describe('split events', () => {
    const fragments = [
      {
        _id: { _data: '82F1' },
        operationType: 'update',
        clusterTime: ts(1700000000, 5),
        splitEvent: { fragment: 1, of: 2 },
      },
      { _id: { _data: '82F2' }, fullDocument: { _id: 5, big: 'x' }, splitEvent: { fragment: 2, of: 2 } },
    ];

    it("hands out one whole event with the last fragment's token, and no tick from inside it", async () => {
      const { client } = scriptedClient([
        new ScriptedStream(
          [null, fragments[0]!, null, fragments[1]!, null],
          new Map([
            [0, '82PB00'],
            [2, '82F1'],
            [4, '82F2'],
          ]),
        ),
      ]);
      const s = source(client);
      await s.startingPosition();
      const item = (await s.next()) as Extract<SourceItem, { kind: 'change' }>;
      expect(item.kind).to.equal('change');
      expect(item.token).to.deep.equal({ _data: '82F2' });
      expect(item.event).to.include({ operationType: 'update' }).and.to.have.property('fullDocument');
      expect(item.event).to.not.have.property('splitEvent');
    });
  });

  describe('events the server cannot deliver', () => {
    const tooLarge = () =>
      new MongoServerError({
        ok: 0,
        code: 10334,
        codeName: 'BSONObjectTooLarge',
        errmsg: 'BSONObj size: 17000000 is invalid',
      });

    it('finds the one event reading one per batch, then skips it with a dead-letter item naming it', async () => {
      const narrow = {
        _id: change(2)._id,
        operationType: 'update',
        ns: { db: 'd', coll: 'c' },
        documentKey: { _id: 2 },
        clusterTime: ts(1700000000, 2),
      };
      const { client, opened } = scriptedClient([
        new ScriptedStream([null, change(1), tooLarge()], new Map([[0, '82PB00']])), // normal batches
        new ScriptedStream([tooLarge()], new Map()), // one event per batch: the next event itself fails
        new ScriptedStream([narrow], new Map()), // the narrow read names it
        new ScriptedStream([change(3)], new Map()), // back to normal after it
      ]);
      const s = source(client);
      await s.startingPosition();
      expect(((await s.next()) as Extract<SourceItem, { kind: 'change' }>).token).to.deep.equal(
        change(1)._id,
      );
      const skipped = (await s.next()) as Extract<SourceItem, { kind: 'change' }>;
      expect(skipped.deadLetter?.reason).to.equal('too-large-for-mongodb');
      expect(skipped.token).to.deep.equal(change(2)._id);
      expect(((await s.next()) as Extract<SourceItem, { kind: 'change' }>).token).to.deep.equal(
        change(3)._id,
      );
      expect(opened[1]!.options).to.include({ batchSize: 1 });
      expect(
        opened[1]!.options.startAfter,
        'careful reading starts after the last whole event',
      ).to.deep.equal(change(1)._id);
      expect(opened[2]!.pipeline.at(-1)).to.have.property('$project');
      expect(opened[3]!.options.startAfter, 'and continues after the skipped one').to.deep.equal(
        change(2)._id,
      );
      expect(opened[3]!.options.batchSize).to.equal(undefined);
    });

    it('with RELAY_ON_UNREADABLE_EVENT=fail, throws naming the change instead', async () => {
      const narrow = {
        _id: change(2)._id,
        operationType: 'update',
        ns: { db: 'd', coll: 'c' },
        documentKey: { _id: 2 },
      };
      const { client } = scriptedClient([
        new ScriptedStream([null, tooLarge()], new Map([[0, '82PB00']])),
        new ScriptedStream([tooLarge()], new Map()),
        new ScriptedStream([narrow], new Map()),
      ]);
      const s = source(client, { onUnreadableEvent: 'fail' });
      await s.startingPosition();
      let error: Error | undefined;
      await s.next().catch((e: Error) => (error = e));
      expect(error?.name).to.equal('UnreadableEventError');
      expect(error?.message).to.contain('update of d.c {"_id":2}');
    });

    it('an event the driver cannot decode (BSONError) is found and skipped the same way, read narrowly without UTF-8 validation', async () => {
      const undecodable = () => new BSON.BSONError('Invalid UTF-8 string in BSON document');
      const narrow = {
        _id: change(2)._id,
        operationType: 'insert',
        ns: { db: 'd', coll: 'c' },
        documentKey: { _id: 2 },
      };
      const { client, opened } = scriptedClient([
        new ScriptedStream([null, change(1), undecodable()], new Map([[0, '82PB00']])),
        new ScriptedStream([undecodable()], new Map()),
        new ScriptedStream([narrow], new Map()),
        new ScriptedStream([change(3)], new Map()),
      ]);
      const s = source(client);
      await s.startingPosition();
      expect(((await s.next()) as Extract<SourceItem, { kind: 'change' }>).token).to.deep.equal(
        change(1)._id,
      );
      const skipped = (await s.next()) as Extract<SourceItem, { kind: 'change' }>;
      expect(skipped.deadLetter?.reason).to.equal('undecodable');
      expect(skipped.deadLetter?.detail).to.contain('Invalid UTF-8');
      expect(skipped.token).to.deep.equal(change(2)._id);
      expect(((await s.next()) as Extract<SourceItem, { kind: 'change' }>).token).to.deep.equal(
        change(3)._id,
      );
      expect(opened[1]!.options).to.include({ batchSize: 1 });
      expect(opened[2]!.options).to.include({ enableUtf8Validation: false });
      expect(opened[3]!.options).to.not.have.property('enableUtf8Validation');
    });
  });

  it("reports an empty batch after a MongoDB transaction's event as a tick even when the token did not move (the transaction is then known complete)", async () => {
    const lsid = { id: new BSON.Binary(Buffer.alloc(16, 1), 4) };
    const t1 = change(1, { lsid, txnNumber: 3 });
    const t2 = change(2, { lsid, txnNumber: 3 });
    const plain = change(3);
    const later = change(4);
    const last = change(5); // so that a source without the rule also hands out five items, and fails
    // The post-batch tokens equal the last event's: what a server gives when nothing newer was scanned.
    const { client } = scriptedClient([
      new ScriptedStream(
        [null, t1, t2, null, plain, null, later, last],
        new Map([
          [0, '82PB00'],
          [3, t2._id._data as string],
          [5, plain._id._data as string],
        ]),
      ),
    ]);
    const s = source(client);
    await s.startingPosition();
    const kinds: string[] = [];
    for (let n = 0; n < 5; n++) {
      const item = await s.next();
      kinds.push(item!.kind === 'tick' ? `tick ${item!.token._data}` : `change ${item!.token._data}`);
    }
    expect(kinds).to.deep.equal([
      `change ${t1._id._data}`,
      `change ${t2._id._data}`,
      `tick ${t2._id._data}`,
      `change ${plain._id._data}`,
      // Outside a transaction an unmoved token is no tick: the empty batch after `plain` gives none.
      `change ${later._id._data}`,
    ]);
  });

  it('close() ends a pending read at once, even when the server never answers', async () => {
    const hung = {
      resumeToken: undefined,
      tryNext: () => new Promise<never>(() => {}),
      close: async () => {},
    };
    const client = { db: () => ({ collection: () => ({ watch: () => hung }) }) } as unknown as MongoClient;
    const s = source(client);
    const pending = s.next();
    setTimeout(() => void s.close(), 20);
    expect(await pending).to.equal(null);
  });
});
