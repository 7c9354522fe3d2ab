/**
 * The README's MongoDB role, for real: a mongod with authentication on, a user holding exactly the
 * privileges README "MongoDB privileges" lists, and the relay and check-config run as that user. Without
 * one of the privileges check-config names the check that fails. The password appears in no output.
 * The stand-in has no authentication, so this runs where a real mongod can be had (MONGO_KIND=mongod).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { MongoClient, type Document } from 'mongodb';
import { startAuthenticatedReplSet, type AuthenticatedReplSet } from '../../../scripts/services/mongo.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, runCli, startRelayReady } from '../../support/relayProcess.js';
import { getServices } from '../../support/services.js';
import { readTopicRecords, requireKcat } from '../../support/kcat.js';
import { waitFor } from '../../support/wait.js';

const CHECKPOINTS = { db: 'mongo_kafka_relay', collection: 'checkpoints' };

/** README "MongoDB privileges" for one collection target, less what `without` names. */
function readmePrivileges(
  db: string,
  coll: string,
  without: 'changeStream' | 'checkpoint' | null,
): Document[] {
  const privileges: Document[] = [
    {
      resource: { db, collection: coll },
      actions: without === 'changeStream' ? ['find'] : ['find', 'changeStream'],
    },
    { resource: { db: 'local', collection: 'oplog.rs' }, actions: ['find'] },
  ];
  if (without !== 'checkpoint')
    privileges.push({ resource: CHECKPOINTS, actions: ['find', 'insert', 'update', 'remove'] });
  return privileges;
}

describe('relay: a least-privilege MongoDB user (the README role)', function () {
  this.timeout(300_000);
  let replSet: AuthenticatedReplSet | undefined;
  let ctx: RelayTestContext | undefined;
  let root: MongoClient | undefined;

  before(function () {
    requireKcat(this);
  });

  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
    await root?.close();
    await replSet?.stop();
  });

  it('relays with only the README role, check-config passes, and without changeStream or the checkpoint privileges check-config names what fails; the password is never printed (real mongod only: the stand-in has no authentication)', async function () {
    if (!getServices().capabilities.realMongod) {
      console.log(
        '    (skipped: the stand-in has no authentication; runs where a real mongod can be had, MONGO_KIND=mongod)',
      );
      this.skip(); // reason: printed above
    }
    replSet = await startAuthenticatedReplSet({ user: 'root', password: randomBytes(12).toString('hex') });
    ctx = await relayTestContext('mongo-user', replSet.rootUri);
    const c = ctx;
    root = c.mongo;
    const admin = root.db('admin');
    const users: Record<string, { password: string; uri: string }> = {};
    for (const [name, without] of [
      ['relay', null],
      ['relay-no-stream', 'changeStream'],
      ['relay-no-checkpoint', 'checkpoint'],
    ] as const) {
      const password = `pw-${randomBytes(10).toString('hex')}`;
      await admin.command({
        createRole: `${name}-role`,
        privileges: readmePrivileges(c.db, 'orders', without),
        roles: [],
      });
      await admin.command({ createUser: name, pwd: password, roles: [`${name}-role`] });
      users[name] = { password, uri: replSet.uriFor(name, password) };
    }
    const envFor = (user: string) => c.env({ MONGODB_URI: users[user]!.uri, RELAY_WATCH: `${c.db}.orders` });
    const expectNoPassword = (text: string, where: string) => {
      for (const [name, { password }] of Object.entries(users))
        expect(text.includes(password), `${name}'s password in ${where}`).to.equal(false);
    };
    await root
      .db(c.db)
      .collection('orders')
      .insertOne({ _id: 'before' as never });

    const checked = await runCli(['check-config'], envFor('relay'));
    expectNoPassword(checked.stdout + checked.stderr, 'check-config output');
    expect(checked.code, checked.stdout + checked.stderr).to.equal(0);
    expect(checked.stdout).to.match(/^ok +oplog window/m);

    const relay = await startRelayReady(envFor('relay'));
    const orders = root.db(c.db).collection<{ _id: number }>('orders');
    for (let i = 0; i < 20; i++) await orders.insertOne({ _id: i });
    const brokers = getServices().brokers;
    await waitFor(async () => (await readTopicRecords(brokers, c.topic('orders'))).length >= 20, {
      timeoutMs: 60_000,
      intervalMs: 1000,
      message: '20 records relayed by the least-privilege user',
    });
    expect((await c.readCheckpoint())?.token, 'checkpoint written as that user').to.not.equal(undefined);
    expect(await relay.kill('SIGTERM')).to.equal(0);
    expectNoPassword([...relay.stdout, ...relay.stderr].join('\n'), 'relay logs');

    const noStream = await runCli(['check-config'], envFor('relay-no-stream'));
    expectNoPassword(noStream.stdout + noStream.stderr, 'check-config output');
    expect(noStream.code).to.equal(1);
    expect(noStream.stdout).to.match(
      new RegExp(`^FAIL change stream on ${c.db}\\.orders: .*not authorized`, 'mi'),
    );

    const noCheckpoint = await runCli(['check-config'], envFor('relay-no-checkpoint'));
    expectNoPassword(noCheckpoint.stdout + noCheckpoint.stderr, 'check-config output');
    expect(noCheckpoint.code).to.equal(1);
    expect(noCheckpoint.stdout).to.match(
      /^FAIL checkpoint store mongo_kafka_relay\.checkpoints: .*not authorized/im,
    );
  });
});
