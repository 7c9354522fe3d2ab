/** Per-test names and handles for relay tests: a fresh database, topic prefix and checkpoint ID. */
import { randomBytes } from 'node:crypto';
import { MongoClient, type Document } from 'mongodb';
import { getServices } from './services.js';

export interface RelayTestContext {
  db: string;
  topicPrefix: string;
  checkpointId: string;
  mongo: MongoClient;
  /** Environment for a relay watching `watch` (e.g. "orders" -> "<db>.orders"). */
  env(overrides?: Record<string, string>): Record<string, string>;
  topic(coll: string): string;
  readCheckpoint(): Promise<Document | null>;
  close(): Promise<void>;
}

export async function relayTestContext(name: string, mongoUri?: string): Promise<RelayTestContext> {
  const suffix = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const db = `t_${name.replace(/[^a-z0-9]/gi, '_').slice(0, 20)}_${suffix}`;
  const topicPrefix = `relay-${suffix}`;
  const checkpointId = `test-${name.replace(/[^a-z0-9]/gi, '-')}-${suffix}`;
  const services = getServices();
  const uri = mongoUri ?? services.mongoUri;
  const mongo = new MongoClient(uri);
  await mongo.connect();
  return {
    db,
    topicPrefix,
    checkpointId,
    mongo,
    env: (overrides = {}) => ({
      MONGODB_URI: uri,
      KAFKA_BROKERS: services.brokers,
      RELAY_WATCH: `${db}.*`,
      KAFKA_TOPIC: `${topicPrefix}.{db}.{coll}`,
      KAFKA_DEAD_LETTER_TOPIC: `${topicPrefix}.dead-letter`,
      KAFKA_TOPIC_PARTITIONS: '3',
      RELAY_CHECKPOINT_ID: checkpointId,
      RELAY_HEARTBEAT_MS: '1000',
      RELAY_LEASE_TTL_MS: '6000',
      RELAY_LEASE_RENEW_MS: '1000',
      RELAY_SHUTDOWN_TIMEOUT_MS: '15000',
      ...overrides,
    }),
    topic: (coll) => `${topicPrefix}.${db}.${coll}`,
    readCheckpoint: () =>
      mongo
        .db('mongo_kafka_relay')
        .collection('checkpoints')
        .findOne({ _id: checkpointId as never }),
    close: async () => {
      await mongo
        .db(db)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    },
  };
}
