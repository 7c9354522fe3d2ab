/**
 * A least-privilege principal on a broker with SASL (PLAIN, and SCRAM-SHA-256 with its users created
 * when the KRaft storage is formatted) and the StandardAuthorizer: with KAFKA_CREATE_TOPICS=false and
 * only WRITE + DESCRIBE on its topics the relay publishes (it looks the topics up and never asks to
 * create them; its idempotent producer needs no cluster right on Kafka 3.0+, WRITE on a topic
 * suffices); a topic it may describe but not write ends the relay with exit code 6 and a message
 * naming the topic and WRITE; `check-config` authenticates; and the password appears in no output.
 */
import { expect } from 'chai';
import kafkajs, { Kafka, logLevel, type Admin } from 'kafkajs';
import type { KafkaCluster, SaslMechanism } from '../../../scripts/services/kafkaCluster.js';
import { startDedicatedKafkaCluster } from '../../support/services.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, runCli, startRelay, type RelayProcess } from '../../support/relayProcess.js';
import { startRelayPatiently } from '../../faults/kafkaClusterFixture.js';
import { collectTopic, kafkaClient } from '../../support/kafka.js';
import { READ_COMMITTED, readTopicWithKcat, requireKcat } from '../../support/kcat.js';
import { waitFor } from '../../support/wait.js';

// Named exports Node cannot see in kafkajs' CommonJS module.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

const MECHANISMS: { broker: SaslMechanism; relay: string }[] = [
  { broker: 'PLAIN', relay: 'plain' },
  { broker: 'SCRAM-SHA-256', relay: 'scram-sha-256' },
];

for (const mechanism of MECHANISMS)
  describe(`relay: a least-privilege Kafka principal (SASL/${mechanism.broker}, ACLs)`, function () {
    this.timeout(600_000);
    // Distinct per mechanism and unusual enough that finding it in any output is a leak, not chance.
    const password = `relay-secret-${mechanism.relay}-7Qx`;
    let cluster: KafkaCluster;
    let admin: Admin;
    let ctx: RelayTestContext | undefined;

    before(async function () {
      this.timeout(400_000);
      cluster = await startDedicatedKafkaCluster({
        nodes: 1,
        sasl: { users: { admin: 'admin-secret', relay: password }, mechanism: mechanism.broker },
      });
      // The internal listener is PLAINTEXT and its principal a super user: the test's admin.
      admin = new Kafka({ brokers: cluster.internalBrokers.split(','), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
    });

    after(async () => {
      await killAllRelays();
      await ctx?.close();
      await admin?.disconnect();
      await cluster?.stop();
    });

    const allow = async (topic: string, operations: number[]): Promise<void> => {
      await admin.createAcls({
        acl: operations.map((operation) => ({
          resourceType: AclResourceTypes.TOPIC,
          resourceName: topic,
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: 'User:relay',
          host: '*',
          operation,
          permissionType: AclPermissionTypes.ALLOW,
        })),
      });
    };

    it('publishes with only WRITE and DESCRIBE on existing topics, exits 6 naming a topic it may not write, and never shows the password', async () => {
      ctx = await relayTestContext('acl');
      const orders = ctx.topic('orders');
      const secret = ctx.topic('secret');
      const deadLetter = `${ctx.topicPrefix}.dead-letter`;
      await admin.createTopics({
        topics: [orders, secret, deadLetter].map((topic) => ({ topic, numPartitions: 3 })),
      });
      await allow(orders, [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE]);
      await allow(deadLetter, [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE]);
      await allow(secret, [AclOperationTypes.DESCRIBE]);
      const env = ctx.env({
        KAFKA_BROKERS: cluster.brokers,
        KAFKA_SASL_MECHANISM: mechanism.relay,
        KAFKA_SASL_USERNAME: 'relay',
        KAFKA_SASL_PASSWORD: password,
        KAFKA_CREATE_TOPICS: 'false',
      });

      const checked = await runCli(['check-config'], { ...env, RELAY_WATCH: `${ctx.db}.orders` }, 120_000);
      expect(checked.code, checked.stdout + checked.stderr).to.equal(0);
      expect(checked.stdout + checked.stderr).not.to.contain(password);
      const wrong = `${password}-wrong`;
      const refusedLogin = await runCli(['check-config'], { ...env, KAFKA_SASL_PASSWORD: wrong }, 120_000);
      const said = refusedLogin.stdout + refusedLogin.stderr;
      expect(refusedLogin.code, said).to.not.equal(0);
      expect(said, 'names what to fix').to.contain('KAFKA_SASL_PASSWORD');
      expect(said).not.to.contain(wrong);

      const allowed = await startRelayPatiently({ ...env, RELAY_WATCH: `${ctx.db}.orders` });
      const reader = await collectTopic(orders, {
        kafka: kafkaClient('acl-reader', cluster.internalBrokers),
      });
      try {
        await ctx.mongo
          .db(ctx.db)
          .collection('orders')
          .insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
        const read = await reader.waitForCount(3, 60_000);
        expect(read).to.have.length(3);
        expect(allowed.child.exitCode).to.equal(null);
      } finally {
        await reader.stop();
        await allowed.kill('SIGTERM');
      }

      const refused = await startRelay({
        ...env,
        RELAY_WATCH: `${ctx.db}.secret`,
        RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-secret`,
      });
      await refused.waitForLog((l) => l.msg === 'change stream open', 240_000, 'the change stream to open');
      await ctx.mongo.db(ctx.db).collection('secret').insertOne({ n: 1 });
      const code = await Promise.race([
        refused.exited,
        new Promise<number>((r) => setTimeout(() => r(-1), 90_000)),
      ]);
      const fatal = refused.logs.filter((l) => l.level >= 50).map((l) => l.msg);
      expect(code, `exit code; errors: ${fatal.join(' | ')}`).to.equal(6);
      expect(fatal.join(' | ')).to.contain(`"${secret}"`).and.to.contain('WRITE');
      for (const relay of [allowed, refused]) expectNoPassword(relay, password);
    });

    it('exactly-once: publishes with WRITE+DESCRIBE on its topics, WRITE+DESCRIBE on its transactional id and READ on the positions topic and its reader groups; without the transactional id right it exits 6 naming it', async function () {
      if (mechanism.broker !== 'SCRAM-SHA-256') this.skip(); // the rights do not depend on the mechanism: SCRAM only
      requireKcat(this);
      ctx = await relayTestContext('acl-eo');
      const orders = ctx.topic('orders');
      const deadLetter = `${ctx.topicPrefix}.dead-letter`;
      const positions = `${ctx.topicPrefix}.positions`;
      const transactionalId = `${ctx.topicPrefix}.txn`;
      await admin.createTopics({
        topics: [
          { topic: orders, numPartitions: 3 },
          { topic: deadLetter, numPartitions: 3 },
          {
            topic: positions,
            numPartitions: 1,
            configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
          },
        ],
      });
      const { WRITE, DESCRIBE, READ } = AclOperationTypes;
      await allow(orders, [WRITE, DESCRIBE]);
      await allow(deadLetter, [WRITE, DESCRIBE]);
      await allow(positions, [WRITE, DESCRIBE, READ]);
      await admin.createAcls({
        acl: [
          ...[WRITE, DESCRIBE].map((operation) => ({
            resourceType: AclResourceTypes.TRANSACTIONAL_ID,
            resourceName: transactionalId,
            resourcePatternType: ResourcePatternTypes.LITERAL,
            principal: 'User:relay',
            host: '*',
            operation,
            permissionType: AclPermissionTypes.ALLOW,
          })),
          {
            resourceType: AclResourceTypes.GROUP,
            resourceName: 'mongo-kafka-relay.positions-reader.',
            resourcePatternType: ResourcePatternTypes.PREFIXED,
            principal: 'User:relay',
            host: '*',
            operation: READ,
            permissionType: AclPermissionTypes.ALLOW,
          },
        ],
      });
      const env = ctx.env({
        KAFKA_BROKERS: cluster.brokers,
        KAFKA_SASL_MECHANISM: mechanism.relay,
        KAFKA_SASL_USERNAME: 'relay',
        KAFKA_SASL_PASSWORD: password,
        KAFKA_CREATE_TOPICS: 'false',
        RELAY_WATCH: `${ctx.db}.orders`,
        RELAY_DELIVERY: 'exactly-once',
        KAFKA_POSITIONS_TOPIC: positions,
        KAFKA_TRANSACTIONAL_ID: transactionalId,
      });
      const allowed = await startRelayPatiently(env);
      try {
        await ctx.mongo
          .db(ctx.db)
          .collection('orders')
          .insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
        await waitFor(
          async () =>
            (await readTopicWithKcat(cluster.internalBrokers, orders, 60_000, READ_COMMITTED)).length === 3,
          { timeoutMs: 90_000, message: 'three committed records' },
        );
        expect(allowed.child.exitCode).to.equal(null);
      } finally {
        await allowed.kill('SIGTERM');
      }
      const refused = await startRelay({
        ...env,
        KAFKA_TRANSACTIONAL_ID: `${transactionalId}-not-granted`,
        RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-txn`,
      });
      const code = await Promise.race([
        refused.exited,
        new Promise<number>((r) => setTimeout(() => r(-1), 120_000)),
      ]);
      const fatal = refused.logs.filter((l) => l.level >= 50).map((l) => l.msg);
      expect(
        code,
        `exit code; errors: ${fatal.join(' | ')}; last logs:\n${refused.stdout.slice(-8).join('\n')}`,
      ).to.equal(6);
      expect(fatal.join(' | '))
        .to.contain('TRANSACTIONAL_ID_AUTHORIZATION_FAILED')
        .and.to.contain('KAFKA_TRANSACTIONAL_ID');
      for (const relay of [allowed, refused]) expectNoPassword(relay, password);
    });
  });

function expectNoPassword(relay: RelayProcess, password: string): void {
  const leaks = [...relay.stdout, ...relay.stderr].filter((line) => line.includes(password));
  expect(leaks, 'output lines carrying the SASL password').to.deep.equal([]);
}
