/**
 * SnapshotReader on a document the driver cannot decode, driven by a scripted client (find cursors
 * reduced to tryNext/toArray/close). The server's part — a real mongod keeps a string that is not UTF-8
 * and the driver fails reading it — is proven by test/integration/relay/snapshot.test.ts on a real
 * mongod; this pins down what the reader makes of the BSONError: the right document named, the walk
 * resumed right after it, nothing else lost, and exit 7 under `fail`.
 */
import { expect } from 'chai';
import pino from 'pino';
import { BSON, Timestamp, type Document, type MongoClient } from 'mongodb';
import { TopicRouter } from '../../../src/pipeline/topicRouter.js';
import type { ReadItem } from '../../../src/pipeline/readItem.js';
import { SnapshotReader } from '../../../src/snapshot/snapshotReader.js';
import { SNAPSHOT_STAND_IN_TOKEN } from '../../../src/snapshot/snapshotRecord.js';
import { UnreadableEventError, type UnreadablePolicy } from '../../../src/source/unreadableEvent.js';

type Step = Document | Error;

/** Number `_id`s 1..n where `bad` cannot be decoded unless UTF-8 validation is off or only `_id` is read. */
function scriptedCollection(n: number, bad: number, badId = false) {
  const finds: Document[] = [];
  const docs = Array.from({ length: n }, (_, i) => ({ _id: i + 1, v: `doc ${i + 1}` }));
  const undecodable = () => new BSON.BSONError('Invalid UTF-8 string in BSON document');
  const find = (filter: Document, options: Document) => {
    finds.push({ filter, options });
    const range = filter._id as { $type?: string[]; $gt?: number };
    const numbers = range.$type?.includes('int') === true;
    const gt = range.$gt ?? 0;
    const matching = numbers ? docs.filter((d) => d._id > gt) : [];
    const idOnly = options.projection !== undefined;
    const fails = (d: { _id: number }) =>
      d._id === bad && (badId || !idOnly) && options.enableUtf8Validation !== false;
    const steps: Step[] = matching.map((d) => (fails(d) ? undecodable() : idOnly ? { _id: d._id } : d));
    let i = 0;
    return {
      tryNext: async () => {
        const step = steps[i++];
        if (step instanceof Error) throw step;
        return step ?? null;
      },
      toArray: async () => {
        const out: Document[] = [];
        for (const step of steps.slice(0, options.limit as number)) {
          if (step instanceof Error) throw step;
          out.push(step);
        }
        return out;
      },
      close: async () => undefined,
    };
  };
  const client = { db: () => ({ collection: () => ({ find }) }) } as unknown as MongoClient;
  return { client, finds };
}

function reader(client: MongoClient, policy: UnreadablePolicy = 'skip'): SnapshotReader {
  return new SnapshotReader(
    client,
    {
      id: '1.1-1',
      number: 1,
      reason: 'initial',
      clusterTime: new Timestamp({ t: 1, i: 1 }),
      collections: [{ db: 'd', coll: 'c', estimated: 0 }],
      cursor: { index: 0, copied: 0 },
    },
    {
      snapshotId: '1.1-1',
      clusterTime: new Timestamp({ t: 1, i: 1 }),
      token: SNAPSHOT_STAND_IN_TOKEN,
      router: new TopicRouter('t.{db}.{coll}', { level: 'deployment' }),
      record: { format: 'canonical', partitionBy: 'document' },
    },
    {
      batchSize: 2,
      logger: pino({ level: 'silent' }),
      deadLetterTopic: 't.dead-letter',
      onUnreadableEvent: policy,
    },
  );
}

async function readAll(r: SnapshotReader): Promise<Array<Extract<ReadItem, { kind: 'publish' }>>> {
  const out: Array<Extract<ReadItem, { kind: 'publish' }>> = [];
  for (let item = await r.next(); item; item = await r.next()) if (item.kind === 'publish') out.push(item);
  return out;
}

describe('snapshot: a document the driver cannot decode', () => {
  it('becomes one dead-letter record naming it (RELAY_ON_UNREADABLE_EVENT=skip); every other document is copied once, in order', async () => {
    const { client, finds } = scriptedCollection(5, 3);
    const items = await readAll(reader(client));
    expect(items.map((i) => i.record.topic)).to.deep.equal([
      't.d.c',
      't.d.c',
      't.dead-letter',
      't.d.c',
      't.d.c',
    ]);
    const dead = items[2]!;
    expect(dead.deadLetter).to.equal('undecodable');
    const body = JSON.parse(dead.record.value as string) as Record<string, unknown>;
    expect(body).to.include({ reason: 'undecodable', ns: 'd.c', operationType: 'snapshot' });
    expect(body.documentKey).to.equal('{"_id":{"$numberInt":"3"}}');
    expect(body.changeId).to.equal('snapshot:1.1-1:d.c:{"$numberInt":"3"}');
    expect(body.detail).to.contain('Invalid UTF-8');
    expect(dead.position.snapshot).to.include({ lastIdJson: '{"_id":{"$numberInt":"3"}}', copied: 3 });
    expect(items.map((i) => i.position.snapshot!.copied)).to.deep.equal([1, 2, 3, 4, 5]);
    const probe = finds.find((f) => f.options.projection);
    expect(probe?.options, 'its _id read alone').to.deep.include({ projection: { _id: 1 } });
    expect(probe?.filter, 'after the last document handed out').to.deep.equal({
      _id: { $type: ['double', 'int', 'long', 'decimal'], $gt: 2 },
    });
  });

  it('the first document of a scan: named the same way', async () => {
    const { client } = scriptedCollection(3, 1);
    const items = await readAll(reader(client));
    expect(items.map((i) => i.deadLetter ?? 'copied')).to.deep.equal(['undecodable', 'copied', 'copied']);
  });

  it('with RELAY_ON_UNREADABLE_EVENT=fail, or when its _id itself cannot be decoded, stops with UnreadableEventError (exit 7) naming it', async () => {
    for (const [policy, badId] of [
      ['fail', false],
      ['skip', true],
    ] as const) {
      const { client } = scriptedCollection(4, 2, badId);
      const r = reader(client, policy);
      expect((await r.next())?.kind).to.equal('publish');
      let error: unknown;
      await r.next().catch((e: unknown) => (error = e));
      expect(error, `${policy}, bad _id: ${badId}`).to.be.instanceOf(UnreadableEventError);
      expect((error as Error).message).to.contain('snapshot of d.c {"_id":2}');
      expect((error as Error).message).to.contain('BSONError');
    }
  });
});
