/**
 * The one table of every setting: type, default, doc line and environment variable. It drives
 * validation, `check-config`, and the configuration reference in the README (`npm run docs:config`).
 */
import type convict from 'convict';
import * as f from './formats.js';
import { parseWatchTargets } from '../source/watchTargets.js';
import { parsePipeline } from './pipeline.js';

export const FULL_DOCUMENT_MODES = ['default', 'updateLookup', 'whenAvailable', 'required'] as const;
export const BEFORE_CHANGE_MODES = ['off', 'whenAvailable', 'required'] as const;
/** Canonical checkpoint mode names (what tests iterate over and what the relay logs). */
export const CHECKPOINT_MODES = ['continuous', 'serial', 'batched'] as const;
export type CheckpointMode = (typeof CHECKPOINT_MODES)[number];
/** Former names, still accepted: `strict` was `serial` before group commit became the default. */
export const CHECKPOINT_MODE_ALIASES: Readonly<Record<string, CheckpointMode>> = { strict: 'serial' };
export type CheckpointModeSetting = CheckpointMode | 'strict';

export function canonicalCheckpointMode(setting: CheckpointModeSetting): CheckpointMode {
  return CHECKPOINT_MODE_ALIASES[setting] ?? (setting as CheckpointMode);
}
export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const schema = {
  mongodb: {
    uri: {
      doc: 'MongoDB connection string of the deployment to watch (a replica set or sharded cluster). Secret: redacted in logs.',
      format: f.mongoUri,
      default: null as string | null,
      env: 'MONGODB_URI',
      sensitive: true,
    },
  },
  relay: {
    watch: {
      doc: 'Comma-separated watch targets: db.coll (a collection), db.* (a whole database), * (the whole deployment).',
      format: (v: unknown) => {
        f.requiredString(v);
        parseWatchTargets(v);
      },
      default: null as string | null,
      env: 'RELAY_WATCH',
    },
    pipeline: {
      doc: 'JSON array (Extended JSON) of extra aggregation stages applied to the change stream, e.g. [{"$match":{"operationType":"insert"}}].',
      format: (v: unknown) => void parsePipeline(v),
      default: '[]',
      env: 'RELAY_PIPELINE',
    },
    fullDocument: {
      doc: 'fullDocument option of the change stream.',
      format: f.oneOf(FULL_DOCUMENT_MODES),
      default: 'updateLookup' as (typeof FULL_DOCUMENT_MODES)[number],
      env: 'RELAY_FULL_DOCUMENT',
    },
    fullDocumentBeforeChange: {
      doc: 'fullDocumentBeforeChange option (needs changeStreamPreAndPostImages on the collection).',
      format: f.oneOf(BEFORE_CHANGE_MODES),
      default: 'off' as (typeof BEFORE_CHANGE_MODES)[number],
      env: 'RELAY_FULL_DOCUMENT_BEFORE_CHANGE',
    },
    operationTypes: {
      doc: 'Comma-separated operation types to publish (empty: all). Others are filtered by the relay and still advance the checkpoint.',
      format: (v: unknown) => {
        if (typeof v !== 'string') throw new Error('must be a comma-separated list of operation types');
        const bad = v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '' && !/^[a-zA-Z]+$/.test(s));
        if (bad.length > 0)
          throw new Error(`must be a comma-separated list of operation types (bad: ${bad.join(', ')})`);
      },
      default: '',
      env: 'RELAY_OPERATION_TYPES',
    },
    startAt: {
      doc: 'Where to start when no checkpoint exists: "now", a cluster time "<seconds>[.<increment>]", or an ISO-8601 date.',
      format: (v: unknown) => {
        if (
          typeof v !== 'string' ||
          !(v === 'now' || /^\d+(\.\d+)?$/.test(v) || !Number.isNaN(Date.parse(v)))
        ) {
          throw new Error('must be "now", "<seconds>[.<increment>]" or an ISO-8601 date');
        }
      },
      default: 'now',
      env: 'RELAY_START_AT',
    },
    startAfterToken: {
      doc: 'Resume token (hex _data) to start after when no checkpoint exists; overrides RELAY_START_AT.',
      format: (v: unknown) => {
        if (v !== '' && (typeof v !== 'string' || !/^[0-9A-Fa-f]+$/.test(v) || v.length % 2 !== 0)) {
          throw new Error('must be empty or a resume token _data hex string');
        }
      },
      default: '',
      env: 'RELAY_START_AFTER_TOKEN',
    },
    onHistoryLost: {
      doc: 'What to do when the checkpoint is no longer in the oplog: "fail" (exit 4) or "restart-from-now" (skips changes; logged as an error and counted).',
      format: f.oneOf(['fail', 'restart-from-now']),
      default: 'fail' as 'fail' | 'restart-from-now',
      env: 'RELAY_ON_HISTORY_LOST',
    },
    allowWatchChange: {
      doc: 'Start even if the checkpoint was written with another watch configuration (targets, pipeline, filters).',
      format: Boolean,
      default: false,
      env: 'RELAY_ALLOW_WATCH_CHANGE',
    },
    maxInFlight: {
      doc: 'Most events read and not yet checkpointed (in flight to Kafka or waiting for their checkpoint write); reading pauses at this limit. Bounds memory and, in continuous mode, the duplicates after a crash.',
      format: f.positiveInt,
      default: 2000,
      env: 'RELAY_MAX_IN_FLIGHT',
    },
    maxInFlightBytes: {
      doc: 'Most record bytes (key + value + headers) read and not yet acknowledged by Kafka; reading pauses at this limit (bounds memory with large documents). At least one event is always admitted.',
      format: f.positiveInt,
      default: 8 * 1024 * 1024,
      env: 'RELAY_MAX_IN_FLIGHT_BYTES',
    },
    readerThread: {
      doc: 'Read the change stream and convert changes to Kafka records on a second thread, while the main thread publishes (uses a second core). false: everything on one thread.',
      format: Boolean,
      default: true,
      env: 'RELAY_READER_THREAD',
    },
    maxAwaitMs: {
      doc: 'How long the server may hold a change stream getMore open waiting for changes (ms).',
      format: f.positiveInt,
      default: 1000,
      env: 'RELAY_MAX_AWAIT_MS',
    },
    valueFormat: {
      doc: 'Extended JSON flavour of the record value: relaxed or canonical.',
      format: f.oneOf(['relaxed', 'canonical']),
      default: 'relaxed' as 'relaxed' | 'canonical',
      env: 'RELAY_VALUE_FORMAT',
    },
    partitionBy: {
      doc: '"document": partition by namespace + document key (per-document order); "change-id": by the record key.',
      format: f.oneOf(['document', 'change-id']),
      default: 'document' as 'document' | 'change-id',
      env: 'RELAY_PARTITION_BY',
    },
    shutdownTimeoutMs: {
      doc: 'On SIGTERM/SIGINT: how long to wait for in-flight events and the final checkpoint before exiting (ms).',
      format: f.positiveInt,
      default: 25000,
      env: 'RELAY_SHUTDOWN_TIMEOUT_MS',
    },
    progressLogEvery: {
      doc: 'Log a checkpoint progress line every N published events (0: never).',
      format: f.nonNegativeInt,
      default: 1000,
      env: 'RELAY_PROGRESS_LOG_EVERY',
    },
  },
  checkpoint: {
    id: {
      doc: 'Name of this stream checkpoint (default: derived from the watch targets, pipeline and filters; logged at start).',
      format: (v: unknown) => {
        if (v !== '' && (typeof v !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(v))) {
          throw new Error('must be empty or 1-200 of [A-Za-z0-9._-]');
        }
      },
      default: '',
      env: 'RELAY_CHECKPOINT_ID',
    },
    uri: {
      doc: 'MongoDB connection string of the checkpoint store (default: MONGODB_URI). Secret: redacted in logs.',
      format: f.optionalMongoUri,
      default: '',
      env: 'RELAY_CHECKPOINT_URI',
      sensitive: true,
    },
    database: {
      doc: 'Database of the checkpoint store.',
      format: f.requiredString,
      default: 'mongo_kafka_relay',
      env: 'RELAY_CHECKPOINT_DB',
    },
    collection: {
      doc: 'Collection of the checkpoint store.',
      format: f.requiredString,
      default: 'checkpoints',
      env: 'RELAY_CHECKPOINT_COLLECTION',
    },
    mode: {
      doc: '"continuous" (group commit): every acknowledged event\'s token is persisted by the next checkpoint write; writes run back to back, one at a time, each covering every event acknowledged since the previous one began. "serial": one event at a time, its token persisted before the next is published. "batched": writes coalesced within RELAY_CHECKPOINT_MAX_EVENTS / RELAY_CHECKPOINT_MAX_DELAY_MS. "strict" is accepted for "serial".',
      format: (v: unknown) => {
        if (
          typeof v !== 'string' ||
          !(CHECKPOINT_MODES.includes(v as CheckpointMode) || v in CHECKPOINT_MODE_ALIASES)
        )
          throw new Error(
            `must be one of: ${CHECKPOINT_MODES.join(', ')} (strict: the former name of serial)`,
          );
      },
      default: 'continuous' as CheckpointModeSetting,
      env: 'RELAY_CHECKPOINT_MODE',
    },
    maxEvents: {
      doc: 'Batched mode: most acknowledged events the persisted token may trail by.',
      format: f.positiveInt,
      default: 1000,
      env: 'RELAY_CHECKPOINT_MAX_EVENTS',
    },
    maxDelayMs: {
      doc: 'Batched mode: longest time (ms) an acknowledged event may wait for its checkpoint write to start.',
      format: f.positiveInt,
      default: 1000,
      env: 'RELAY_CHECKPOINT_MAX_DELAY_MS',
    },
    heartbeatMs: {
      doc: 'How often (ms) a quiet stream persists the server post-batch resume token, keeping it inside the oplog window.',
      format: f.positiveInt,
      default: 10000,
      env: 'RELAY_HEARTBEAT_MS',
    },
  },
  lease: {
    ttlMs: {
      doc: 'Lease lifetime (ms): a crashed owner is replaced within this time.',
      format: f.positiveInt,
      default: 15000,
      env: 'RELAY_LEASE_TTL_MS',
    },
    renewMs: {
      doc: 'How often (ms) the owner renews its lease; must be well under RELAY_LEASE_TTL_MS.',
      format: f.positiveInt,
      default: 5000,
      env: 'RELAY_LEASE_RENEW_MS',
    },
    whenHeld: {
      doc: 'When another live relay holds the lease: "wait" for it, or "exit" (code 5).',
      format: f.oneOf(['wait', 'exit']),
      default: 'wait' as 'wait' | 'exit',
      env: 'RELAY_LEASE_WHEN_HELD',
    },
  },
  kafka: {
    brokers: {
      doc: 'Comma-separated Kafka bootstrap brokers, host:port.',
      format: f.brokerList,
      default: null as string | null,
      env: 'KAFKA_BROKERS',
    },
    clientId: {
      doc: 'Kafka client id.',
      format: f.requiredString,
      default: 'mongo-kafka-relay',
      env: 'KAFKA_CLIENT_ID',
    },
    topic: {
      doc: 'Topic name template; {db} and {coll} are replaced by the event namespace.',
      format: f.topicTemplate,
      default: 'mongo.{db}.{coll}',
      env: 'KAFKA_TOPIC',
    },
    deadLetterTopic: {
      doc: 'Topic for events Kafka cannot accept (too large); each gets a small record naming it.',
      format: f.topicName,
      default: 'mongo_kafka_relay.dead_letter',
      env: 'KAFKA_DEAD_LETTER_TOPIC',
    },
    ssl: { doc: 'Connect to Kafka over TLS.', format: Boolean, default: false, env: 'KAFKA_SSL' },
    saslMechanism: {
      doc: 'SASL mechanism: none, plain, scram-sha-256, scram-sha-512.',
      format: f.oneOf(SASL_MECHANISMS),
      default: 'none' as (typeof SASL_MECHANISMS)[number],
      env: 'KAFKA_SASL_MECHANISM',
    },
    saslUsername: { doc: 'SASL user name.', format: String, default: '', env: 'KAFKA_SASL_USERNAME' },
    saslPassword: {
      doc: 'SASL password. Secret: redacted in logs.',
      format: String,
      default: '',
      env: 'KAFKA_SASL_PASSWORD',
      sensitive: true,
    },
    createTopics: {
      doc: 'Create missing topics (with the partitions and replication factor below) before publishing to them.',
      format: Boolean,
      default: true,
      env: 'KAFKA_CREATE_TOPICS',
    },
    topicPartitions: {
      doc: 'Partitions of topics the relay creates.',
      format: f.positiveInt,
      default: 6,
      env: 'KAFKA_TOPIC_PARTITIONS',
    },
    replicationFactor: {
      doc: 'Replication factor of topics the relay creates (-1: the broker default).',
      format: f.replicationFactor,
      default: -1,
      env: 'KAFKA_TOPIC_REPLICATION_FACTOR',
    },
    maxMessageBytes: {
      doc: 'Largest record (key + value + headers) the relay sends; larger events go to the dead-letter topic. Keep at or under the broker/topic max.message.bytes.',
      format: f.positiveInt,
      default: 1000000,
      env: 'KAFKA_MAX_MESSAGE_BYTES',
    },
    maxBatchBytes: {
      doc: 'Most bytes per produce request (kafkajs does not split batches; keep under max.message.bytes).',
      format: f.positiveInt,
      default: 900000,
      env: 'KAFKA_MAX_BATCH_BYTES',
    },
    retryMaxMs: {
      doc: 'Cap (ms) of the exponential backoff between publish retries while Kafka is unavailable.',
      format: f.positiveInt,
      default: 10000,
      env: 'KAFKA_RETRY_MAX_MS',
    },
  },
  metrics: {
    host: {
      doc: 'Address of the metrics and probe endpoint.',
      format: f.requiredString,
      default: '127.0.0.1',
      env: 'METRICS_HOST',
    },
    port: {
      doc: 'Port of the metrics and probe endpoint (0: any free port).',
      format: f.port,
      default: 9464,
      env: 'METRICS_PORT',
    },
  },
  log: {
    level: {
      doc: 'Log level.',
      format: f.oneOf(LOG_LEVELS),
      default: 'info' as (typeof LOG_LEVELS)[number],
      env: 'LOG_LEVEL',
    },
  },
} satisfies convict.Schema<unknown>;
