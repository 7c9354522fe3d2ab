/**
 * An image the source kept as raw BSON is decoded only when its record is written: bytes the decoder
 * rejects there (a string that is not UTF-8, which MongoDB stores for clients that skip validation) must
 * take the unreadable-event path as when the driver failed to decode the event: a dead-letter record
 * naming the change under RELAY_ON_UNREADABLE_EVENT=skip, UnreadableEventError (exit 7) under fail;
 * never a wrong record, never a crash. The stream is scripted (what the server does is the integration
 * tests' part); the event's bytes are real BSON, decoded by the raw reader's own decoder.
 */
import { expect } from 'chai';
import pino from 'pino';
import { BSON, type MongoClient } from 'mongodb';
import { ChangeConverter } from '../../../../src/pipeline/readItem.js';
import { TopicRouter } from '../../../../src/pipeline/topicRouter.js';
import {
  ChangeSource,
  UnreadableEventError,
  type OpenedStream,
} from '../../../../src/source/changeSource.js';
import { RawDocument, decodeChangeEvent } from '../../../../src/source/rawEvent.js';

/** An insert of {_id: n, s: <string>} whose string bytes are `text`'s, with byte `bad` put in it. */
function insertBytes(n: number, bad: number | null): Buffer {
  const bytes = Buffer.from(
    BSON.serialize({
      _id: { _data: `82${String(n).padStart(16, '0')}` },
      operationType: 'insert',
      clusterTime: new BSON.Timestamp({ t: 1700000000, i: n }),
      fullDocument: { _id: n, s: 'abcdef' },
      ns: { db: 'd', coll: 'c' },
      documentKey: { _id: n },
    }),
  );
  if (bad !== null) bytes[bytes.indexOf(Buffer.from('abcdef')) + 2] = bad;
  return bytes;
}

function sourceOf(events: Buffer[], onUnreadableEvent: 'skip' | 'fail', unreadable: string[]): ChangeSource {
  const stream: OpenedStream & { resumeToken: unknown } = {
    resumeToken: undefined,
    async tryNext() {
      const bytes = events.shift();
      if (!bytes) return null;
      const event = decodeChangeEvent(bytes);
      this.resumeToken = event._id;
      return event;
    },
    async close() {},
  };
  return new ChangeSource(
    {} as MongoClient,
    { startAfter: { _data: '8200' } },
    {
      scope: { level: 'collection', db: 'd', coll: 'c' },
      pipeline: [],
      fullDocument: 'default',
      fullDocumentBeforeChange: 'off',
      maxAwaitTimeMS: 10,
      logger: pino({ level: 'silent' }),
      splitLargeEvents: false,
      onUnreadableEvent,
      onUnreadable: (kind) => unreadable.push(kind),
      openStream: () => stream,
    },
  );
}

const converter = () =>
  new ChangeConverter({
    router: new TopicRouter('mongo.{db}.{coll}', { level: 'collection', db: 'd', coll: 'c' }),
    record: { format: 'relaxed', partitionBy: 'document' },
    operationTypes: null,
    deadLetterTopic: 'relay.dead-letter',
  });

describe('relay edges: a raw image the decoder rejects', () => {
  it('RELAY_ON_UNREADABLE_EVENT=skip: a dead-letter record names the change, the changes around it are published', async () => {
    const unreadable: string[] = [];
    const source = sourceOf(
      [insertBytes(1, null), insertBytes(2, 0xff), insertBytes(3, null)],
      'skip',
      unreadable,
    );
    const convert = converter();
    const items = [];
    for (let k = 0; k < 3; k++) {
      const item = (await source.next())!;
      expect(item.kind).to.equal('change');
      if (item.kind === 'change')
        expect((item.event as { fullDocument?: unknown }).fullDocument).to.be.instanceOf(RawDocument);
      items.push(convert.convertFrom(source, item));
    }
    const [first, bad, third] = items.map((i) => (i.kind === 'publish' ? i : null));
    expect(first?.deadLetter).to.equal(undefined);
    expect(String(first?.record.value)).to.contain('"fullDocument":{"_id":1,"s":"abcdef"}');
    expect(bad?.deadLetter).to.equal('undecodable');
    expect(bad?.record.topic).to.equal('relay.dead-letter');
    const named = JSON.parse(String(bad?.record.value)) as Record<string, unknown>;
    expect(named).to.include({ changeId: '820000000000000002', ns: 'd.c', reason: 'undecodable' });
    expect(named.documentKey).to.equal('{"_id":{"$numberInt":"2"}}');
    expect(String(named.detail)).to.match(/UTF-8/i);
    expect(third?.deadLetter).to.equal(undefined);
    expect(third?.position.token._data).to.equal('820000000000000003');
    expect(unreadable).to.deep.equal(['undecodable']);
  });

  it('RELAY_ON_UNREADABLE_EVENT=fail: UnreadableEventError naming the change (exit 7)', async () => {
    const source = sourceOf([insertBytes(5, 0xc3)], 'fail', []);
    const item = (await source.next())!;
    let thrown: unknown;
    try {
      converter().convertFrom(source, item);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(UnreadableEventError);
    expect((thrown as UnreadableEventError).kind).to.equal('undecodable');
    expect((thrown as Error).message)
      .to.contain('820000000000000005')
      .and.contain('insert of d.c');
  });
});
