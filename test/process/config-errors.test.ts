import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { kafkaClient } from '../support/kafka.js';
import { getServices } from '../support/services.js';
import { REPO_ROOT, runCli } from '../support/relayProcess.js';

const CHECKPOINT_ID = `config-errors-${Date.now().toString(36)}`;
const TOPIC_PREFIX = `config-errors-${Date.now().toString(36)}`;

function goodEnv(): Record<string, string> {
  const s = getServices();
  return {
    MONGODB_URI: s.mongoUri,
    KAFKA_BROKERS: s.brokers,
    RELAY_WATCH: 'config_errors.items',
    RELAY_CHECKPOINT_ID: CHECKPOINT_ID,
    KAFKA_TOPIC: `${TOPIC_PREFIX}.{db}.{coll}`,
    METRICS_PORT: '0',
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'relay-config-'));
const badYaml = path.join(dir, 'bad.yaml');
writeFileSync(badYaml, 'relay:\n  watch: [unclosed\n');
const unknownKey = path.join(dir, 'unknown.json');
writeFileSync(unknownKey, JSON.stringify({ relay: { wach: 'a.b' } }));
const badValueFile = path.join(dir, 'bad-value.yaml');
writeFileSync(badValueFile, 'checkpoint:\n  mode: sometimes\n');

interface Case {
  name: string;
  env?: Record<string, string | undefined>;
  args?: string[];
  expect: RegExp[];
}

const cases: Case[] = [
  {
    name: 'MONGODB_URI missing',
    env: { MONGODB_URI: undefined },
    expect: [/MONGODB_URI \(mongodb\.uri\): is required/],
  },
  {
    name: 'MONGODB_URI not a MongoDB URI, without echoing its secret',
    env: { MONGODB_URI: 'postgres://admin:TOPSECRET@db/x' },
    expect: [
      /MONGODB_URI \(mongodb\.uri\): must be a MongoDB connection string/,
      /value was "postgres:\/\/\*\*\*@db\/x"/,
    ],
  },
  {
    name: 'RELAY_WATCH missing',
    env: { RELAY_WATCH: '' },
    expect: [/RELAY_WATCH \(relay\.watch\): is required/],
  },
  {
    name: 'RELAY_WATCH without a database',
    env: { RELAY_WATCH: 'orders' },
    expect: [/RELAY_WATCH.*must be db\.coll, db\.\* or \*.*value was "orders"/],
  },
  {
    name: 'RELAY_WATCH on a system database',
    env: { RELAY_WATCH: 'admin.users' },
    expect: [/RELAY_WATCH.*system database "admin"/],
  },
  {
    name: 'RELAY_PIPELINE not JSON',
    env: { RELAY_PIPELINE: '[{"$match":' },
    expect: [/RELAY_PIPELINE \(relay\.pipeline\): must be a JSON array/],
  },
  {
    name: 'RELAY_PIPELINE with $out',
    env: { RELAY_PIPELINE: '[{"$out":"x"}]' },
    expect: [/RELAY_PIPELINE.*\$out is not allowed/],
  },
  {
    name: 'RELAY_FULL_DOCUMENT unknown',
    env: { RELAY_FULL_DOCUMENT: 'sometimes' },
    expect: [
      /RELAY_FULL_DOCUMENT \(relay\.fullDocument\): must be one of: default, updateLookup, whenAvailable, required: value was "sometimes"/,
    ],
  },
  {
    name: 'KAFKA_BROKERS not host:port',
    env: { KAFKA_BROKERS: 'kafka' },
    expect: [/KAFKA_BROKERS.*host:port.*"kafka"/],
  },
  {
    name: 'KAFKA_TOPIC with an unknown placeholder',
    env: { KAFKA_TOPIC: 'cdc.{database}' },
    expect: [/KAFKA_TOPIC.*\{db\} and \{coll\}.*\{database\}/],
  },
  {
    name: 'METRICS_PORT out of range',
    env: { METRICS_PORT: '70000' },
    expect: [/METRICS_PORT \(metrics\.port\): must be a TCP port.*70000/],
  },
  {
    name: 'RELAY_CHECKPOINT_MODE unknown',
    env: { RELAY_CHECKPOINT_MODE: 'lazy' },
    expect: [/RELAY_CHECKPOINT_MODE.*continuous, serial, batched.*"lazy"/],
  },
  {
    name: 'RELAY_MAX_IN_FLIGHT negative',
    env: { RELAY_MAX_IN_FLIGHT: '-5' },
    expect: [/RELAY_MAX_IN_FLIGHT.*at least 0/],
  },
  {
    name: 'LOG_LEVEL unknown',
    env: { LOG_LEVEL: 'loud' },
    expect: [/LOG_LEVEL \(log\.level\): must be one of/],
  },
  {
    name: 'SASL without a password',
    env: { KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'relay' },
    expect: [
      /KAFKA_SASL_PASSWORD \(kafka\.saslPassword\): must be set when KAFKA_SASL_MECHANISM is scram-sha-256: value is not set/,
    ],
  },
  {
    name: 'MONGODB_URI with an option the driver does not know (issue 10.10)',
    env: { MONGODB_URI: 'mongodb://127.0.0.1:1/?fooBar=1' },
    expect: [
      /MONGODB_URI \(mongodb\.uri\): is not a connection string the MongoDB driver accepts: option foobar/,
    ],
  },
  {
    name: 'MONGODB_URI with an unescaped "@" in the password, never echoing it (issue 10.10)',
    env: { MONGODB_URI: 'mongodb://relay:TOPSECRET@x@127.0.0.1:1/' },
    expect: [/MONGODB_URI \(mongodb\.uri\): .*percent-encode/],
  },
  {
    name: 'RELAY_CHECKPOINT_URI with an option the driver does not know (issue 10.10)',
    env: { RELAY_CHECKPOINT_URI: 'mongodb://127.0.0.1:1/?fooBar=1' },
    expect: [/RELAY_CHECKPOINT_URI \(checkpoint\.uri\): .*option foobar/],
  },
  {
    name: 'a bad MONGODB_URI whose password has a quote, shown redacted (issue 10.11)',
    env: { MONGODB_URI: "mongodb://alice:it's_TOPSECRET@127.0.0.1:1/?fooBar=1" },
    expect: [/value was "mongodb:\/\/\*\*\*@127\.0\.0\.1:1\/\?fooBar=1"/],
  },
  {
    name: 'KAFKA_SSL that is no boolean (issue 10.12)',
    env: { KAFKA_SSL: 'maybe' },
    expect: [/KAFKA_SSL \(kafka\.ssl\): must be true or false.*"maybe"/],
  },
  {
    name: 'RELAY_OPERATION_TYPES misspelt (issue 10.13)',
    env: { RELAY_OPERATION_TYPES: 'inserts,updat' },
    expect: [/RELAY_OPERATION_TYPES.*"inserts" \(did you mean "insert"\?\)/],
  },
  {
    name: 'RELAY_WATCH missing, with a misspelt RELAY_WACTH named beside it (issue 10.14)',
    env: { RELAY_WATCH: undefined, RELAY_WACTH: 'config_errors.items' },
    expect: [/RELAY_WATCH \(relay\.watch\): is required/, /RELAY_WACTH .*did you mean RELAY_WATCH\?/],
  },
  {
    name: 'RELAY_WATCH against MongoDB naming rules (issue 10.15)',
    env: { RELAY_WATCH: 'db..x' },
    expect: [/RELAY_WATCH.*collection name "\.x"/],
  },
  {
    name: 'RELAY_PIPELINE removing _id (issue 10.15)',
    env: { RELAY_PIPELINE: '[{"$project":{"_id":0}}]' },
    expect: [/RELAY_PIPELINE.*stage 0: \$project removes _id/],
  },
  {
    name: 'RELAY_START_AT that only Date.parse would read (issue 10.15)',
    env: { RELAY_START_AT: 'version 2' },
    expect: [/RELAY_START_AT.*ISO-8601.*"version 2"/],
  },
  {
    name: 'MONGODB_URI unset: "not set", not "[redacted]" (issue 10.15)',
    env: { MONGODB_URI: undefined },
    expect: [/MONGODB_URI \(mongodb\.uri\): is required.*value is not set/],
  },
  {
    name: 'lease renewal slower than half the TTL',
    env: { RELAY_LEASE_TTL_MS: '4000', RELAY_LEASE_RENEW_MS: '3000' },
    expect: [/RELAY_LEASE_RENEW_MS.*at most half/],
  },
  {
    name: 'a config file that is not valid YAML',
    args: ['--config', badYaml],
    expect: [/--config .*bad\.yaml: is not valid \.yaml/],
  },
  { name: 'a config file with an unknown key', args: ['--config', unknownKey], expect: [/relay\.wach/] },
  {
    name: 'a bad value in a config file',
    args: ['--config', badValueFile],
    expect: [/RELAY_CHECKPOINT_MODE \(checkpoint\.mode\).*"sometimes"/],
  },
  {
    name: 'several bad keys at once, each named',
    env: { RELAY_FULL_DOCUMENT: 'x', KAFKA_BROKERS: 'y', METRICS_PORT: '-1' },
    expect: [/RELAY_FULL_DOCUMENT/, /KAFKA_BROKERS/, /METRICS_PORT/],
  },
];

describe('configuration errors (mongo-kafka-relay start)', function () {
  for (const c of cases) {
    it(`${c.name}: exits 3 with a message naming the key, the value and what is allowed`, async () => {
      const env = { ...goodEnv(), ...c.env };
      const result = await runCli(['start', ...(c.args ?? [])], env);
      expect(result.code, result.stderr).to.equal(3);
      for (const re of c.expect) expect(result.stderr).to.match(re);
      expect(result.stderr).not.to.contain('TOPSECRET');
      expect(result.stdout, 'nothing logged: it stopped before connecting').to.equal('');
    });
  }

  it('a relay that cannot start exits with its code even if a library leaked a handle (issue 10.10)', async () => {
    const leak = path.join(REPO_ROOT, 'test/fixtures/process/leak-handle.mjs');
    const env = {
      ...goodEnv(),
      MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${leak}`,
    };
    const result = await runCli(['start'], env, 60_000);
    expect(result.code, result.stderr).to.equal(1);
    expect(result.stdout).to.contain('cannot connect to MongoDB');
  });

  it('wrote nothing to Kafka or to the checkpoint store', async () => {
    const admin = kafkaClient().admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics.filter((t) => t.startsWith(TOPIC_PREFIX))).to.deep.equal([]);
    const client = new MongoClient(getServices().mongoUri);
    try {
      const doc = await client
        .db('mongo_kafka_relay')
        .collection('checkpoints')
        .findOne({ _id: CHECKPOINT_ID as never });
      expect(doc).to.equal(null);
    } finally {
      await client.close();
    }
  });
});
