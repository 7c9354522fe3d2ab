/**
 * The plumbing, without the relay: a change stream read with the driver, each event produced with an
 * idempotent kafkajs producer (acks=all) and consumed back. If this fails, nothing above it can work.
 */
import { expect } from 'chai';
import { BSON, MongoClient } from 'mongodb';
import { collectTopic, createTopic, idempotentProducer, kafkaClient, uniqueTopic } from '../support/kafka.js';
import { getServices } from '../support/services.js';

describe('plumbing: MongoDB change stream -> kafkajs producer -> kafkajs consumer', () => {
  it('carries insert, update, replace and delete with their namespace, document key and order', async () => {
    const client = new MongoClient(getServices().mongoUri);
    await client.connect();
    const db = `plumbing_${Date.now().toString(36)}`;
    const coll = client.db(db).collection<{ _id: number; v: number }>('things');
    const topic = uniqueTopic('plumbing');
    const kafka = kafkaClient('plumbing');
    const producer = idempotentProducer(kafka);
    try {
      await createTopic(kafka, topic, 1);
      await producer.connect();
      const stream = coll.watch();
      await stream.tryNext(); // opened before the writes
      await coll.insertOne({ _id: 1, v: 1 });
      await coll.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await coll.replaceOne({ _id: 1 }, { v: 3 });
      await coll.deleteOne({ _id: 1 });
      for (let i = 0; i < 4; i++) {
        const event = await stream.next();
        await producer.send({
          topic,
          acks: -1,
          messages: [{ key: (event._id as { _data: string })._data, value: BSON.EJSON.stringify(event) }],
        });
      }
      await stream.close();
      const collector = await collectTopic(topic, { kafka });
      try {
        const got = await collector.waitForCount(4);
        const events = got.map(
          (m) => BSON.EJSON.parse(m.value!) as { operationType: string; ns: object; documentKey: object },
        );
        expect(events.map((e) => e.operationType)).to.deep.equal(['insert', 'update', 'replace', 'delete']);
        for (const e of events) {
          expect(e.ns).to.deep.equal({ db, coll: 'things' });
          expect(e.documentKey).to.deep.equal({ _id: 1 });
        }
      } finally {
        await collector.stop();
      }
    } finally {
      await producer.disconnect();
      await client.db(db).dropDatabase();
      await client.close();
    }
  });
});
