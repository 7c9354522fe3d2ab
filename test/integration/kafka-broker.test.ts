/**
 * The local broker really works with kafkajs: Kafka 4 dropped old protocol versions (KIP-896)
 * and kafkajs 2.2.4 never checks a broker's *minimum* version, so incompatibility would show
 * up here, as UNSUPPORTED_VERSION errors, rather than in the relay's tests.
 */
import { expect } from 'chai';
import { createRequire } from 'node:module';
import type { Consumer, Kafka } from 'kafkajs';
import { kafkaRoundTrip, kafkaVersion, type KafkaService } from '../../scripts/services/kafka.js';
import { collectTopic, createTopic, idempotentProducer, kafkaClient, uniqueTopic } from '../support/kafka.js';
import { getServices, startDedicatedKafka } from '../support/services.js';
import { waitFor } from '../support/wait.js';

const kafkajsVersion = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string })
  .version;

describe(`Kafka ${kafkaVersion()} broker with kafkajs ${kafkajsVersion}`, () => {
  let kafka: Kafka;
  before(() => {
    kafka = kafkaClient('kafka-broker-test');
  });

  it('admin: createTopics with 4 partitions, fetchTopicMetadata, fetchTopicOffsets', async () => {
    const topic = uniqueTopic('admin');
    await createTopic(kafka, topic, 4);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(topics).to.have.length(1);
      const partitions = topics[0]!.partitions;
      expect(partitions.map((p) => p.partitionId).sort()).to.deep.equal([0, 1, 2, 3]);
      for (const p of partitions) expect(p.leader).to.be.at.least(0);
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.map((o) => o.high)).to.deep.equal(['0', '0', '0', '0']);
      expect(await admin.listTopics()).to.include(topic);
    } finally {
      await admin.disconnect();
    }
  });

  it('idempotent producer (acks=all) sendBatch to 3 partitions; a 2-member group reads all back in per-partition order', async () => {
    const topic = uniqueTopic('order');
    await createTopic(kafka, topic, 3);
    const groupId = uniqueTopic('group');
    const received: { member: number; partition: number; value: string }[] = [];
    const assignment = new Map<number, number[]>();
    const consumers: Consumer[] = [];
    const producer = idempotentProducer(kafka);
    try {
      for (const member of [0, 1]) {
        const c = kafka.consumer({ groupId, maxWaitTimeInMs: 500, heartbeatInterval: 500 });
        consumers.push(c);
        c.on(c.events.GROUP_JOIN, (e) => assignment.set(member, e.payload.memberAssignment[topic] ?? []));
        await c.connect();
        await c.subscribe({ topics: [topic], fromBeginning: true });
        await c.run({
          eachMessage: async ({ partition, message }) => {
            received.push({ member, partition, value: message.value!.toString() });
          },
        });
      }
      // Produce only once the group is stable with both members, so no partition changes hands
      // mid-stream (that would be a rebalance test, not a compatibility test).
      await waitFor(
        () =>
          assignment.size === 2 &&
          [...assignment.values()].flat().sort().join() === '0,1,2' &&
          [...assignment.values()].every((a) => a.length > 0),
        { timeoutMs: 60_000, message: () => `both members assigned (${JSON.stringify([...assignment])})` },
      );

      await producer.connect();
      const perPartition = 20;
      for (const half of [0, 1]) {
        const result = await producer.sendBatch({
          acks: -1,
          topicMessages: [
            {
              topic,
              messages: Array.from({ length: 3 * (perPartition / 2) }, (_, i) => {
                const seq = half * (perPartition / 2) + Math.floor(i / 3);
                return { partition: i % 3, key: `k${i % 3}`, value: `p${i % 3}-${seq}` };
              }),
            },
          ],
        });
        expect(result.map((r) => r.errorCode)).to.deep.equal([0, 0, 0]);
      }

      await waitFor(() => received.length >= 3 * perPartition, {
        timeoutMs: 60_000,
        message: () => `${3 * perPartition} messages (got ${received.length})`,
      });
      expect(received).to.have.length(3 * perPartition);
      for (const p of [0, 1, 2]) {
        const got = received.filter((r) => r.partition === p);
        expect(got.map((r) => r.value)).to.deep.equal(
          Array.from({ length: perPartition }, (_, s) => `p${p}-${s}`),
        );
        expect(new Set(got.map((r) => r.member)).size, `partition ${p} read by one member`).to.equal(1);
      }
    } finally {
      await producer.disconnect();
      await Promise.all(consumers.map((c) => c.disconnect()));
    }
  });

  it('commits offsets and resumes after the consumer restarts', async () => {
    const topic = uniqueTopic('resume');
    const groupId = uniqueTopic('resume-group');
    await createTopic(kafka, topic, 1);
    const producer = idempotentProducer(kafka);
    await producer.connect();
    const send = (from: number, to: number) =>
      producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: to - from }, (_, i) => ({ value: `m${from + i}` })),
      });

    // Manual commits of offset+1 after each message: exactly what the relay's consumers do.
    const consume = async (count: number): Promise<string[]> => {
      const values: string[] = [];
      const c = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
      await c.connect();
      await c.subscribe({ topics: [topic], fromBeginning: true });
      await c.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          values.push(message.value!.toString());
          await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        },
      });
      await waitFor(() => values.length >= count, {
        timeoutMs: 60_000,
        message: () => `${count} messages (got ${values.length})`,
      });
      await c.disconnect();
      return values;
    };

    try {
      await send(0, 5);
      expect(await consume(5)).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
      const admin = kafka.admin();
      await admin.connect();
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      await admin.disconnect();
      expect(committed!.partitions).to.deep.equal([{ partition: 0, offset: '5', metadata: null }]);

      await send(5, 8);
      expect(await consume(3)).to.deep.equal(['m5', 'm6', 'm7']);
    } finally {
      await producer.disconnect();
    }
  });

  it('auto-creates a topic on first produce (auto.create.topics.enable)', async () => {
    const topic = uniqueTopic('auto');
    const producer = idempotentProducer(kafka);
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v', headers: { h: 'x' } }] });
    } finally {
      await producer.disconnect();
    }
    const collector = await collectTopic(topic);
    try {
      const [m] = await collector.waitForCount(1);
      expect(m).to.include({ key: 'k', value: 'v', partition: 0, offset: '0' });
      expect(m!.headers).to.deep.equal({ h: 'x' });
    } finally {
      await collector.stop();
    }
  });

  describe('a dedicated broker (never the shared one)', () => {
    let dedicated: KafkaService;
    before(async function () {
      this.timeout(180_000);
      dedicated = await startDedicatedKafka();
    });
    after(async () => {
      await dedicated?.stop();
    });

    it('stops and starts again on the same port with its data kept', async () => {
      expect(dedicated.brokers).to.not.equal(getServices().brokers);
      const client = kafkaClient('restart-test', dedicated.brokers);
      const topic = uniqueTopic('restart');
      const producer = idempotentProducer(client);
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ value: 'before-stop' }] });
      await producer.disconnect();

      const { port, pid } = dedicated;
      await dedicated.stop();
      expect(await kafkaRoundTrip(dedicated.brokers, 1_000), 'broker answers after stop').to.equal(false);

      await dedicated.start();
      expect(dedicated.port).to.equal(port);
      expect(dedicated.pid).to.not.equal(pid);

      const collector = await collectTopic(topic, { kafka: client });
      try {
        const [m] = await collector.waitForCount(1, 60_000);
        expect(m!.value).to.equal('before-stop');
      } finally {
        await collector.stop();
      }
    });
  });
});
