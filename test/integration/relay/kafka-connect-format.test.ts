/**
 * RELAY_OUTPUT_FORMAT=mongo-kafka-connect end to end: changes read from the real server, published to the
 * real broker, read back. The MongoDB connector cannot run here (its jars are not served), so the records
 * are held to its documented shape (key `{"_id": <resume token>}`, the change event as strict Extended
 * JSON) and to an independent reader of the truth: a change stream opened by the test.
 */
import { expect } from 'chai';
import { BSON } from 'mongodb';
import { decodeRecord } from '../../../src/consumer/decode.js';
import { asKafkaMessage, collectTopic } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady } from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';

describe("RELAY_OUTPUT_FORMAT=mongo-kafka-connect: the MongoDB connector's records, from the real server", function () {
  let ctx: RelayTestContext;

  before(async () => {
    ctx = await relayTestContext('mkc-format');
  });
  after(async () => {
    await killAllRelays();
    await ctx.close();
  });

  it('keys each change by {"_id": <resume token>} and writes the event as strict Extended JSON the helper reads back', async () => {
    await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.pets`, RELAY_OUTPUT_FORMAT: 'mongo-kafka-connect' }),
    );
    const pets = ctx.mongo.db(ctx.db).collection('pets');
    const watch = pets.watch([], { fullDocument: 'updateLookup' }); // the truth, read independently
    await watch.tryNext();
    const id = new BSON.ObjectId();
    await pets.insertOne({
      _id: id,
      name: 'Rex',
      born: new Date('2020-01-02T03:04:05.120Z'),
      chip: BSON.Long.fromString('9007199254740993'),
      weight: BSON.Decimal128.fromString('12.50'),
      photo: new BSON.Binary(Buffer.from('png')),
    });
    await pets.updateOne({ _id: id }, { $set: { name: 'Rex II' } });
    await pets.deleteOne({ _id: id });
    const truth = [await watch.next(), await watch.next(), await watch.next()];
    await watch.close().catch(() => undefined);

    const collector = await collectTopic(ctx.topic('pets'));
    try {
      const got = await waitFor(() => (collector.messages.length >= 3 ? collector.messages : undefined), {
        timeoutMs: 60_000,
        message: () => `3 records (got ${collector.messages.length})`,
      });
      const byId = new Map(got.map((m) => [m.headers['change-id'], m]));
      for (const event of truth) {
        const token = (event._id as { _data: string })._data;
        const m = byId.get(token);
        expect(m, `the record of ${event.operationType}`).to.not.equal(undefined);
        expect(m!.key).to.equal(`{"_id": {"_data": "${token}"}}`);
        expect(m!.headers['content-type']).to.equal('application/json; format=mongo-kafka-connect');
        // Strict mode (DefaultJson): dates as milliseconds, 64-bit integers and binaries as objects.
        expect(m!.value).to.match(
          new RegExp(`^\\{"_id": \\{"_data": "${token}"\\}, "operationType": "${event.operationType}", `),
        );
        if (event.operationType === 'insert') {
          expect(m!.value).to.contain('"born": {"$date": 1577934245120}');
          expect(m!.value).to.contain('"chip": {"$numberLong": "9007199254740993"}');
          expect(m!.value).to.contain('"photo": {"$binary": "cG5n", "$type": "00"}');
        }
        // The consumer helper reads it, with the change ID from the header and, as for the connector's
        // own records (no headers), from the key.
        for (const headers of [m!.headers, {}]) {
          const decoded = decodeRecord(m!.topic, m!.partition, asKafkaMessage(m!, headers), {
            relaxed: false,
          });
          if (!decoded.ok) throw new Error(`${event.operationType}: ${decoded.error}`);
          expect(decoded.changeId).to.equal(token);
          expect(
            BSON.EJSON.stringify((decoded.event as { documentKey?: BSON.Document }).documentKey ?? null),
          ).to.equal(BSON.EJSON.stringify((event as { documentKey?: BSON.Document }).documentKey ?? null));
          const full = (event as { fullDocument?: BSON.Document }).fullDocument;
          if (full)
            expect(
              BSON.EJSON.stringify((decoded.event as { fullDocument?: BSON.Document }).fullDocument!),
            ).to.equal(BSON.EJSON.stringify(full));
        }
      }
    } finally {
      await collector.stop();
    }
  });
});
