/**
 * The one table of every setting: type, default, doc line and environment variable. It drives
 * validation, `check-config`, and the configuration reference in the README (`npm run docs:config`).
 */
import type convict from 'convict';
import * as f from './formats.js';
import { parseWatchTargets } from './watchTargets.js';
import { parsePipeline } from './pipeline.js';
import { OUTPUT_FORMATS, type OutputFormat } from './outputFormat.js';

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
/** lz4 and zstd are missing on purpose: their kafkajs codecs need native addons (see src/sink/compression.ts). */
export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy'] as const;
export const RECORD_TIMESTAMPS = ['event', 'send'] as const;
/** RELAY_KEY: what a record is keyed by (see src/pipeline/toRecord.ts and README, "State topics"). */
export const RECORD_KEYS = ['change-id', 'document'] as const;
export type RecordKey = (typeof RECORD_KEYS)[number];
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
      doc: "Comma-separated watch targets: db.coll (a collection), db.* (a whole database), * (the whole deployment). Names follow MongoDB's naming rules.",
      format: (v: unknown) => {
        f.requiredString(v);
        parseWatchTargets(v);
      },
      default: null as string | null,
      env: 'RELAY_WATCH',
    },
    pipeline: {
      doc: 'JSON array (Extended JSON) of extra aggregation stages applied to the change stream, e.g. [{"$match":{"operationType":"insert"}}]. Only change-stream stages; stages that remove or change _id (the resume token), operationType, ns, documentKey or clusterTime are refused.',
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
      doc: 'Comma-separated operation types to publish (empty: all), as MongoDB spells them: insert, update, replace, delete, drop, rename, dropDatabase, invalidate (expanded-event types are known but never reach the relay). Others are filtered by the relay and still advance the checkpoint.',
      format: f.operationTypeList,
      default: '',
      env: 'RELAY_OPERATION_TYPES',
    },
    startAt: {
      doc: 'Where to start when no checkpoint exists: "now", a cluster time "<seconds>[.<increment>]", or an ISO-8601 date ("2024-05-01", UTC) or date-time with an offset ("2024-05-01T10:00:00Z").',
      format: f.startAt,
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
    snapshot: {
      doc: 'Copy the existing documents of the watched collections before streaming: "never"; "initial" (when the relay starts without a checkpoint, and resumes an interrupted copy); "when-needed" (also when the stream history is lost: instead of exit 4 it takes a new position, copies again and continues — an operator choice, the copy re-publishes every document). RELAY_ON_HISTORY_LOST=restart-from-now takes precedence over it.',
      format: f.oneOf(['never', 'initial', 'when-needed']),
      default: 'never' as 'never' | 'initial' | 'when-needed',
      env: 'RELAY_SNAPSHOT',
    },
    allowWatchChange: {
      doc: 'Continue from the stored position although the checkpoint was written with another watch configuration (targets, pipeline, operation types); without it such a start is refused (exit 3). Also lets a single checkpoint of an earlier version under a derived ID be adopted.',
      format: f.strictBoolean,
      default: false,
      env: 'RELAY_ALLOW_WATCH_CHANGE',
    },
    maxInFlight: {
      doc: 'Most events read and not yet checkpointed (in flight to Kafka or waiting for their checkpoint write); reading pauses at this limit. Bounds memory and, in continuous mode, the duplicates after a crash. 0: 2000 with RELAY_DELIVERY=at-least-once, 8000 with exactly-once (no duplicates to bound there, and each Kafka transaction holds up to half of this limit: larger transactions, fewer commits; memory stays bounded by RELAY_MAX_IN_FLIGHT_BYTES).',
      format: f.nonNegativeInt,
      default: 0,
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
      format: f.strictBoolean,
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
    outputFormat: {
      doc: 'Record layout. "relay": the record contract in the README (key = change ID, value = the change event as Extended JSON). "debezium": what Debezium\'s MongoDB connector writes with JsonConverter and schemas off (key {"id": <_id>}, the before/after/source/op envelope, a tombstone after each delete; KAFKA_TOPIC must be <prefix>.{db}.{coll}, the prefix being Debezium\'s topic.prefix). "mongo-kafka-connect": what the MongoDB Kafka source connector writes by default (key {"_id": <resume token>}, the change event as strict Extended JSON). The relay\'s headers come with every format. See README, "Drop-in output formats".',
      format: f.oneOf(OUTPUT_FORMATS),
      default: 'relay' as OutputFormat,
      env: 'RELAY_OUTPUT_FORMAT',
    },
    partitionBy: {
      doc: '"document": partition by namespace + document key (per-document order); "change-id": by the record key.',
      format: f.oneOf(['document', 'change-id']),
      default: 'document' as 'document' | 'change-id',
      env: 'RELAY_PARTITION_BY',
    },
    key: {
      doc: '"change-id": each record is keyed by its change ID (the event stream). "document": keyed by namespace + document key, and every delete is followed by a tombstone (same key, null value), so a topic with cleanup.policy=compact keeps each document\'s latest change (a state topic; topics the relay creates get cleanup.policy=compact). Needs RELAY_PARTITION_BY=document and full documents on updates (RELAY_FULL_DOCUMENT other than default). See README, "State topics".',
      format: f.oneOf(RECORD_KEYS),
      default: 'change-id' as RecordKey,
      env: 'RELAY_KEY',
    },
    shutdownTimeoutMs: {
      doc: 'On SIGTERM/SIGINT: how long to wait for in-flight events and the final checkpoint before exiting (ms).',
      format: f.positiveInt,
      default: 25000,
      env: 'RELAY_SHUTDOWN_TIMEOUT_MS',
    },
    onUnreadableEvent: {
      doc: 'An event MongoDB cannot deliver (over 16 MB and not split, or a required pre-/post-image gone) or the driver cannot decode (a string that is not UTF-8): "skip" (a dead-letter record names it; the relay moves on) or "fail" (exit 7).',
      format: f.oneOf(['skip', 'fail']),
      default: 'skip' as 'skip' | 'fail',
      env: 'RELAY_ON_UNREADABLE_EVENT',
    },
    delivery: {
      doc: '"at-least-once" (default): each change is published, its token checkpointed after Kafka acknowledged it; a crash re-publishes at most the in-flight events, with the same change ID. "exactly-once": a transactional producer publishes the events and, in the same Kafka transaction, the position (token, snapshot progress) to KAFKA_POSITIONS_TOPIC; a consumer with isolation.level=read_committed sees each change once. Transactions span the events in flight (RELAY_MAX_IN_FLIGHT, RELAY_MAX_IN_FLIGHT_BYTES) and at most RELAY_TRANSACTION_MAX_MS, and keep each multi-document MongoDB transaction whole unless it exceeds the in-flight limits.',
      format: f.oneOf(['at-least-once', 'exactly-once']),
      default: 'at-least-once' as 'at-least-once' | 'exactly-once',
      env: 'RELAY_DELIVERY',
    },
    transactionMaxMs: {
      doc: 'RELAY_DELIVERY=exactly-once: longest time (ms) a Kafka transaction stays open once its first record is sent; read_committed consumers see its records when it commits.',
      format: f.positiveInt,
      default: 500,
      env: 'RELAY_TRANSACTION_MAX_MS',
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
      doc: 'Name of this stream checkpoint (default: "default"). It does not change with the watch configuration; relays sharing a checkpoint store need one each.',
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
      format: f.databaseName,
      default: 'mongo_kafka_relay',
      env: 'RELAY_CHECKPOINT_DB',
    },
    collection: {
      doc: 'Collection of the checkpoint store.',
      format: f.collectionName,
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
    timeoutMs: {
      doc: 'Bound (ms) of every checkpoint and lease read or write (also the wtimeout of their majority write concern); a slower operation fails, is retried, and turns /readyz 503. 0: half of RELAY_LEASE_TTL_MS - RELAY_LEASE_RENEW_MS, between 1000 and 5000; must be below RELAY_LEASE_TTL_MS.',
      format: f.nonNegativeInt,
      default: 0,
      env: 'RELAY_CHECKPOINT_TIMEOUT_MS',
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
    ssl: { doc: 'Connect to Kafka over TLS.', format: f.strictBoolean, default: false, env: 'KAFKA_SSL' },
    sslCaFile: {
      doc: "PEM file of the CA certificates that sign the brokers' certificates (default: Node's bundled public CAs). Needs KAFKA_SSL=true.",
      format: f.optionalReadableFile,
      default: '',
      env: 'KAFKA_SSL_CA_FILE',
    },
    sslCertFile: {
      doc: 'PEM file of the client certificate (chain) for mutual TLS; set together with KAFKA_SSL_KEY_FILE.',
      format: f.optionalReadableFile,
      default: '',
      env: 'KAFKA_SSL_CERT_FILE',
    },
    sslKeyFile: {
      doc: 'PEM file of the private key of KAFKA_SSL_CERT_FILE.',
      format: f.optionalReadableFile,
      default: '',
      env: 'KAFKA_SSL_KEY_FILE',
    },
    sslKeyPassword: {
      doc: 'Passphrase of KAFKA_SSL_KEY_FILE when it is encrypted. Secret: redacted in logs.',
      format: String,
      default: '',
      env: 'KAFKA_SSL_KEY_PASSWORD',
      sensitive: true,
    },
    sslServername: {
      doc: "Name the brokers' certificates must match, when it differs from the host names they advertise (also sent as SNI).",
      format: String,
      default: '',
      env: 'KAFKA_SSL_SERVERNAME',
    },
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
      format: f.strictBoolean,
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
    compression: {
      doc: 'Compression of produced record batches: none, gzip or snappy.',
      format: f.oneOf(KAFKA_COMPRESSIONS),
      default: 'none' as (typeof KAFKA_COMPRESSIONS)[number],
      env: 'KAFKA_COMPRESSION',
    },
    recordTimestamp: {
      doc: '"event": the record timestamp is the time of the change (wallTime, else clusterTime); "send": the time the relay sends it.',
      format: f.oneOf(RECORD_TIMESTAMPS),
      default: 'event' as (typeof RECORD_TIMESTAMPS)[number],
      env: 'KAFKA_RECORD_TIMESTAMP',
    },
    transactionalId: {
      doc: 'RELAY_DELIVERY=exactly-once: the transactional id of the relay\'s producer (default: "mongo-kafka-relay.<checkpoint id>"). A second producer with the same id fences the first.',
      format: (v: unknown) => {
        if (v !== '' && (typeof v !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(v))) {
          throw new Error('must be empty or 1-249 of [A-Za-z0-9._-]');
        }
      },
      default: '',
      env: 'KAFKA_TRANSACTIONAL_ID',
    },
    positionsTopic: {
      doc: "RELAY_DELIVERY=exactly-once: the compacted topic holding each checkpoint's committed position, keyed by checkpoint id (created compacted when missing and KAFKA_CREATE_TOPICS allows).",
      format: f.topicName,
      default: 'mongo_kafka_relay.positions',
      env: 'KAFKA_POSITIONS_TOPIC',
    },
    transactionTimeoutMs: {
      doc: "RELAY_DELIVERY=exactly-once: the transaction timeout (ms) the broker enforces; a transaction open longer (a relay cut off from Kafka, a stall) is aborted by the broker, and the relay sends its records again in a new one. At most the broker's transaction.max.timeout.ms.",
      format: f.positiveInt,
      default: 60000,
      env: 'KAFKA_TRANSACTION_TIMEOUT_MS',
    },
    progressTimeoutMs: {
      doc: 'While records wait, longest time (ms) without any Kafka acknowledgement before /healthz answers 503 so the orchestrator restarts the relay.',
      format: f.positiveInt,
      default: 300000,
      env: 'KAFKA_PROGRESS_TIMEOUT_MS',
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
    nsLabelLimit: {
      doc: 'Most distinct values of the ns label of events_total; changes of further namespaces count under ns="_other" (0: no ns label). Bounds the series of db.* and * watches.',
      format: f.nonNegativeInt,
      default: 100,
      env: 'METRICS_NS_LABEL_LIMIT',
    },
    oplogIntervalMs: {
      doc: 'How often (ms) the oplog window is read from local.oplog.rs for the oplog window and headroom gauges (0: never). Needs find on local.oplog.rs; not through mongos.',
      format: f.nonNegativeInt,
      default: 60000,
      env: 'METRICS_OPLOG_INTERVAL_MS',
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
