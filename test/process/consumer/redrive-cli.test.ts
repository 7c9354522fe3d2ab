import { expect } from 'chai';
import { ObjectId } from 'mongodb';

import { ConsumerMetricName, PermanentHandlerError } from '../../../src/consumer/index.js';
import { ChangeEventFactory, toRelayRecord } from '../../support/change-records.js';
import { runCli } from '../../support/relayProcess.js';
import {
  ConsumerTestKit,
  TEST_DB,
  metricValue,
  services,
  waitFor,
} from '../../integration/consumer/helpers.js';

describe('CLI: mongo-kafka-relay consumer-redrive (process)', function () {
  const kit = new ConsumerTestKit();
  const factory = new ChangeEventFactory({ db: 'shop', coll: 'orders' });

  before(() => kit.setUp());
  afterEach(() => kit.stopConsumers());
  after(() => kit.tearDown());

  it('clears the dead-letter marks of a group and re-publishes its dead letters; --dry-run changes nothing', async () => {
    const topic = await kit.topic('redrive-cli');
    const poison = toRelayRecord(factory.insert({ _id: new ObjectId() }));
    await kit.produce(topic, [poison]);

    let broken = true;
    const handled: string[] = [];
    const options = kit.baseOptions(topic);
    await kit.start({
      ...options,
      handler: (_event, { changeId }) => {
        if (broken) throw new PermanentHandlerError('not yet');
        handled.push(changeId);
      },
    });
    await waitFor(
      async () => (await metricValue(options.registry, ConsumerMetricName.deadLettered, { topic })) === 1,
      { timeoutMs: 30_000, message: 'the change dead-lettered' },
    );

    const env = { KAFKA_BROKERS: services().brokers, MONGODB_URI: services().mongoUri };
    const args = [
      'consumer-redrive',
      '--group',
      options.groupId,
      '--dead-letter-topic',
      `${topic}.dlq`,
      '--seen-db',
      TEST_DB,
      '--seen-collection',
      options.seen!.collection!,
      '--json',
    ];
    const dry = await runCli([...args, '--dry-run'], env);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(JSON.parse(dry.stdout)).to.deep.include({ read: 1, redriven: 1, dryRun: true });
    broken = false;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(handled, 'a dry run re-publishes nothing').to.deep.equal([]);

    const run = await runCli(args, env);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.include({ read: 1, redriven: 1, dryRun: false });
    await waitFor(() => handled.includes(poison.key), { timeoutMs: 30_000, message: 'the change handled' });
    expect(run.stderr).to.not.contain(services().mongoUri);
  });

  it('exits 3 naming the variable when KAFKA_BROKERS is missing, and 2 without --group', async () => {
    const noBrokers = await runCli(['consumer-redrive', '--group', 'g', '--dead-letter-topic', 't'], {
      MONGODB_URI: services().mongoUri,
      KAFKA_BROKERS: '',
    });
    expect(noBrokers.code).to.equal(3);
    expect(noBrokers.stderr).to.contain('KAFKA_BROKERS');
    const noGroup = await runCli(['consumer-redrive', '--dead-letter-topic', 't'], {
      MONGODB_URI: services().mongoUri,
      KAFKA_BROKERS: services().brokers,
    });
    expect(noGroup.code).to.equal(2);
    expect(noGroup.stderr).to.contain('--group');
  });
});
