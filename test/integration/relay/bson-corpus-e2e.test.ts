/**
 * The BSON specification's corpus end to end (issue 18 item 2): every valid document of the corpus
 * (test/fixtures/bson-corpus) is inserted into the real server as its exact bytes (an OP_MSG document
 * sequence, so no driver re-encodes it), relayed by the relay (the change stream read as raw BSON, the
 * image written from its bytes), read back from Kafka with kcat (librdkafka, an independent client),
 * and its `fullDocument` text must be, byte for byte, `EJSON.stringify` of the document as the driver
 * reads it back from the collection (decoded as the relay decodes events). Relaxed and canonical.
 *
 * The server may refuse a document (a top-level `$` key, a type it does not store) or store it changed:
 * refusals are listed, and the comparison is with what the server kept, read back by the driver.
 */
import { expect } from 'chai';
import { BSON } from 'mongodb';
import { EVENT_DECODING } from '../../../src/source/rawEvent.js';
import { corpusFiles } from '../../support/bsonCorpus.js';
import { readTopicWithKcat, requireKcat } from '../../support/kcat.js';
import { insertDocumentBytes } from '../../support/rawInsert.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { waitFor } from '../../support/wait.js';

/** `bytes` (one document) with `_id: id` (int32) put first. */
function withId(bytes: Buffer, id: number): Buffer {
  const element = Buffer.alloc(1 + 4 + 4);
  element[0] = 0x10;
  element.write('_id\0', 1, 'latin1');
  element.writeInt32LE(id, 5);
  const out = Buffer.concat([bytes.subarray(0, 4), element, bytes.subarray(4)]);
  out.writeInt32LE(out.length, 0);
  return out;
}

const cases = corpusFiles.flatMap(({ name, corpus }) =>
  (corpus.valid ?? []).map((c) => ({
    what: `${name} "${c.description}"`,
    bytes: Buffer.from(c.canonical_bson, 'hex'),
  })),
);

describe('relay: the BSON corpus end to end, read back with kcat (oracle: the driver read-back + EJSON.stringify)', function () {
  let ctx: RelayTestContext;

  before(async function () {
    requireKcat(this);
    ctx = await relayTestContext('corpus-e2e');
  });
  after(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  for (const format of ['relaxed', 'canonical'] as const) {
    it(`writes every corpus document the server keeps exactly as the library writes it (${format})`, async () => {
      const coll = `corpus_${format}`;
      await startRelayReady(
        ctx.env({
          RELAY_WATCH: `${ctx.db}.${coll}`,
          RELAY_VALUE_FORMAT: format,
          RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-${format}`,
        }),
      );
      const collection = ctx.mongo.db(ctx.db).collection<{ _id: number }>(coll);
      const expected = new Map<string, { what: string; text: string }>();
      const refused: string[] = [];
      for (const [k, c] of cases.entries()) {
        try {
          await insertDocumentBytes(getServices().mongoUri, ctx.db, coll, withId(c.bytes, k));
        } catch (error) {
          refused.push(`${c.what}: ${(error as Error).message.slice(0, 120)}`);
          continue;
        }
        const raw = (await collection.findOne({ _id: k }, { raw: true })) as unknown as Buffer | null;
        expect(raw, `${c.what} read back`).to.not.equal(null);
        const kept = BSON.deserialize(raw!, EVENT_DECODING);
        const key = BSON.EJSON.stringify({ _id: k }, { relaxed: false });
        expected.set(key, {
          what: c.what,
          text: `"fullDocument":${BSON.EJSON.stringify(kept, { relaxed: format === 'relaxed' })}`,
        });
      }
      console.log(
        `      corpus end to end (${format}): ${cases.length} valid documents, ${expected.size} kept by the server, ${refused.length} refused`,
      );
      for (const r of refused) console.log(`        refused: ${r}`);
      expect(expected.size, 'documents the server kept').to.be.greaterThan(cases.length / 2);

      const records = await waitFor(
        async () => {
          const read = await readTopicWithKcat(getServices().brokers, ctx.topic(coll), 60_000);
          return read.length >= expected.size ? read : undefined;
        },
        {
          timeoutMs: 120_000,
          intervalMs: 1000,
          message: () => `${expected.size} records on ${ctx.topic(coll)}`,
        },
      );
      expect(records).to.have.length(expected.size);
      let matched = 0;
      for (const r of records) {
        const header = /(?:^|,)document-key=([^,]*)/.exec(r.headers)?.[1];
        const want = header !== undefined ? expected.get(header) : undefined;
        expect(want, `a record for document key ${header}`).to.not.equal(undefined);
        expect(r.value!.toString('utf8'), want!.what).to.contain(want!.text);
        matched += 1;
      }
      expect(matched).to.equal(expected.size);
    });
  }
});
