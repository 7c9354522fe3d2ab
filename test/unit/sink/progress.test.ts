import { expect } from 'chai';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { KafkaSink } from '../../../src/sink/kafkaSink.js';

// A sink that never connects (nothing listens on port 1): what waits in it is never acknowledged.
function idleSink(progressTimeoutMs: number): KafkaSink {
  const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING });
  return new KafkaSink(kafka, {
    maxMessageBytes: 1000,
    maxBatchBytes: 1000,
    maxBatchRecords: 10,
    retryMaxMs: 100,
    deadLetterTopic: 'dead-letter',
    createTopics: null,
    logger: pino({ level: 'silent' }),
    progressTimeoutMs,
  });
}

describe('sink liveness', () => {
  it('is live while nothing waits, however long nothing was acknowledged', () => {
    const sink = idleSink(1000);
    expect(sink.stalledForMs(Date.now() + 3_600_000)).to.equal(0);
    expect(sink.isLive).to.equal(true);
  });

  it('counts the stall from when records started waiting, and turns not live after the timeout', async () => {
    const sink = idleSink(50);
    void sink
      .publish({
        topic: 't',
        key: 'k',
        value: 'v',
        headers: {},
        partitionKey: Buffer.from('k'),
        size: 2,
        ns: 'db.c',
        operationType: 'insert',
      })
      .catch(() => undefined);
    expect(sink.isLive, 'right after the record arrived').to.equal(true);
    expect(sink.stalledForMs(Date.now() + 40)).to.be.within(39, 60);
    await new Promise((r) => setTimeout(r, 80));
    expect(sink.isLive, 'after the progress timeout').to.equal(false);
    await sink.stop(Date.now());
  });
});
