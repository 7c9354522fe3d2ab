/**
 * KAFKA_COMPRESSION and KAFKA_RECORD_TIMESTAMP on the real broker: records sent gzip- or
 * snappy-compressed read back unchanged, and carry the change's own time as their timestamp (or the
 * send time with `send`).
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { KafkaSink } from '../../../src/sink/kafkaSink.js';
import type { OutboundRecord } from '../../../src/pipeline/toRecord.js';
import { collectTopic, kafkaClient, uniqueTopic } from '../../support/kafka.js';

const EVENT_TIME = Date.parse('2024-02-29T12:34:56.789Z');

function record(topic: string, value: string, eventTimeMs?: number): OutboundRecord {
  return {
    topic,
    key: value,
    value,
    headers: { 'change-id': value },
    partitionKey: Buffer.from(value),
    size: value.length * 3,
    ns: 'db.coll',
    operationType: 'insert',
    ...(eventTimeMs !== undefined ? { eventTimeMs } : {}),
  };
}

describe('sink: record options', function () {
  this.timeout(180_000);

  const cases = [
    { compression: 'gzip', recordTimestamp: 'event' },
    { compression: 'snappy', recordTimestamp: 'event' },
    { compression: 'none', recordTimestamp: 'send' },
  ] as const;
  for (const { compression, recordTimestamp } of cases) {
    it(`KAFKA_COMPRESSION=${compression}, KAFKA_RECORD_TIMESTAMP=${recordTimestamp}`, async () => {
      const topic = uniqueTopic(`options-${compression}`);
      const sink = new KafkaSink(kafkaClient('record-options'), {
        maxMessageBytes: 1_000_000,
        maxBatchBytes: 900_000,
        maxBatchRecords: 100,
        retryMaxMs: 1000,
        deadLetterTopic: `${topic}.dead-letter`,
        createTopics: { partitions: 2, replicationFactor: -1 },
        logger: pino({ level: 'silent' }),
        compression,
        recordTimestamp,
      });
      const sentAt = Date.now();
      try {
        await sink.connect();
        const values = Array.from({ length: 20 }, (_, i) => `${compression}-${i}-${'x'.repeat(200)}`);
        await Promise.all(values.map((v) => sink.publish(record(topic, v, EVENT_TIME))));
      } finally {
        await sink.stop(Date.now() + 5000);
      }
      const reader = await collectTopic(topic);
      try {
        const read = await reader.waitForCount(20, 60_000);
        expect(read.map((m) => m.value).sort()).to.deep.equal(
          Array.from({ length: 20 }, (_, i) => `${compression}-${i}-${'x'.repeat(200)}`).sort(),
        );
        for (const m of read) {
          if (recordTimestamp === 'event') expect(Number(m.timestamp)).to.equal(EVENT_TIME);
          else expect(Number(m.timestamp)).to.be.at.least(sentAt - 1000);
        }
      } finally {
        await reader.stop();
      }
    });
  }
});
