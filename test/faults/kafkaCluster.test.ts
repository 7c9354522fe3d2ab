/**
 * Kafka as production runs it: three brokers (KRaft quorum of three, replication factor 3,
 * min.insync.replicas 2), each reached through a gate the test controls.
 *
 * 1. skipped-broker: the kafkajs path where a retry skips a broker that already answered (kafkajs
 *    issue #1303), provoked deterministically: a produce request to partition 1's leader is held at
 *    its gate, that broker is shut down (partition 1's leadership moves to the broker that already
 *    answered for partition 0), and the held request is dropped. The record must still reach Kafka.
 * 2. Scenarios with a writer running throughout, read back by an independent consumer, in the default
 *    checkpoint mode and in `batched` (one relay per mode, both through the same fault: the broker
 *    restarts are what costs time): rolling restart (controlled shutdowns), SIGKILL of the leader of the
 *    busiest partition, a preferred-leader election mid-stream, and a broker cut off from the relay.
 *    Each prints `faults: kafka-cluster-<scenario>-<mode> ... lost=0 ... order_violations=0`.
 * One cluster serves the whole file (its start is a minute of the suite's time).
 */
import { expect } from 'chai';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { partitionFor } from '../../src/pipeline/murmur2.js';
import type { OutboundRecord } from '../../src/pipeline/toRecord.js';
import { KafkaSink, type PublishOutcome } from '../../src/sink/kafkaSink.js';
import { collectTopic, kafkaClient, uniqueTopic } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';
import { chooseSeed, SeededRandom, SEED_ENV } from '../support/random.js';
import { startClusterUnderTest, type ClusterUnderTest } from './kafkaClusterFixture.js';
import { runClusterScenario, CLUSTER_SCENARIOS, CLUSTER_MODES } from './kafkaClusterScenarios.js';

const log = (line: string): void => console.log(`      [cluster] ${line}`);

/** A partition key that the relay's hash puts in `partition` of `count`. */
function keyFor(partition: number, count: number): Buffer {
  for (let i = 0; ; i++) {
    const key = Buffer.from(`doc-${i}`);
    if (partitionFor(key, count) === partition) return key;
  }
}

function record(topic: string, partitionKey: Buffer, value: string): OutboundRecord {
  return {
    topic,
    key: value,
    value,
    headers: {},
    partitionKey,
    size: value.length * 2,
    ns: 'test.skip',
    operationType: 'insert',
  };
}

describe('fault suite: a three-broker Kafka cluster', function () {
  let c: ClusterUnderTest;
  // Every scenario draws from its own generator with this seed, so `--grep <scenario>` replays it alone.
  const seed = chooseSeed();

  before(async function () {
    this.timeout(600_000);
    console.log(`      kafka cluster faults: seed=${seed} (${SEED_ENV}=${seed} replays it)`);
    c = await startClusterUnderTest(log);
  });

  after(async function () {
    this.timeout(120_000);
    await c?.close();
  });

  it('skipped-broker: a record whose partition leader moves onto a broker that already answered is still written', async () => {
    const topic = uniqueTopic('skipped-broker');
    await c.admin.createTopics({
      topics: [
        {
          topic,
          replicaAssignment: [
            { partition: 0, replicas: [1, 3, 2] },
            { partition: 1, replicas: [2, 1, 3] },
          ],
        },
      ],
      // kafkajs' own wait fails when the metadata has not reached the broker it asks yet.
      waitForLeaders: false,
    });
    await waitFor(async () => (await c.leaderOf(topic, 0)) === 1 && (await c.leaderOf(topic, 1)) === 2, {
      timeoutMs: 60_000,
      message: 'brokers 1 and 2 to lead partitions 0 and 1',
    });
    const kafka = new Kafka({
      clientId: 'skipped-broker',
      brokers: c.brokers.split(','),
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const sink = new KafkaSink(kafka, {
      maxMessageBytes: 1_000_000,
      maxBatchBytes: 900_000,
      maxBatchRecords: 1000,
      retryMaxMs: 1000,
      deadLetterTopic: `${topic}.dead-letter`,
      createTopics: null,
      logger: pino({ level: 'silent' }),
    });
    const node2 = c.cluster.node(2);
    const gate1 = c.gates.get(1)!;
    const gate2 = c.gates.get(2)!;
    try {
      await sink.connect();
      await sink.createMissingTopics([topic]);
      const forwardedBefore = gate1.forwardedProduceRequests();
      gate2.holdProduce();
      // One batch, one record for each partition: leader 1 answers, leader 2's request waits at its gate.
      const outcomes: Promise<PublishOutcome>[] = [
        sink.publish(record(topic, keyFor(0, 2), 'to-partition-0')),
        sink.publish(record(topic, keyFor(1, 2), 'to-partition-1')),
      ];
      await waitFor(
        () => gate2.heldProduceRequests() > 0 && gate1.forwardedProduceRequests() > forwardedBefore,
        {
          timeoutMs: 30_000,
          message: 'the produce requests to reach both leaders',
        },
      );
      await new Promise((r) => setTimeout(r, 1000)); // leader 1's answer is back
      // Controlled shutdown of broker 2: partition 1's leadership moves to broker 1, which has answered.
      await node2.stop();
      await waitFor(async () => (await c.leaderOf(topic, 1)) === 1, {
        timeoutMs: 60_000,
        message: 'broker 1 to lead partition 1',
      });
      gate2.cut(); // the held request never reaches anyone
      const settled = await Promise.race([
        Promise.allSettled(outcomes),
        new Promise<null>((r) => setTimeout(() => r(null), 90_000)),
      ]);
      expect(settled, 'both publishes settle').to.not.equal(null);
      expect(settled!.map((s) => s.status)).to.deep.equal(['fulfilled', 'fulfilled']);

      const reader = await collectTopic(topic, { kafka: kafkaClient('skipped-broker-reader', c.direct) });
      try {
        // What the sink reported as published must be in Kafka: both records, each once.
        await reader.waitForCount(2, 30_000).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 2000));
        const values = reader.messages.map((m) => `${m.partition}:${m.value}`).sort();
        console.log(`      faults: kafka-cluster-skipped-broker records=${JSON.stringify(values)}`);
        expect(values).to.deep.equal(['0:to-partition-0', '1:to-partition-1']);
      } finally {
        await reader.stop();
      }
    } finally {
      await sink.stop(Date.now() + 5000).catch(() => undefined);
      gate2.restore();
      gate2.release();
      if (!node2.running) await node2.start();
      await c.waitFullyReplicated([topic]);
    }
  });

  const modes = CLUSTER_MODES.map((m) => m.name).join(' and ');
  for (const scenario of CLUSTER_SCENARIOS) {
    it(`kafka-cluster-${scenario}: ${modes} checkpoint modes at once`, async function () {
      // Broker restarts on a busy 2-core machine take a minute each; the read-back waits up to 5 min.
      this.timeout(900_000);
      const random = new SeededRandom(seed);
      await runClusterScenario(c, scenario, CLUSTER_MODES, () => random.next(), seed);
    });
  }
});
