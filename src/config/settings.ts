/**
 * The validated configuration in the shape the relay uses, with the values derived from it
 * (parsed targets, the stream scope, the checkpoint ID and the watch fingerprint).
 *
 * The checkpoint ID never depends on the watch configuration: it is RELAY_CHECKPOINT_ID, or "default".
 * (Earlier versions derived it from the fingerprint, so any edit of RELAY_WATCH, RELAY_PIPELINE or
 * RELAY_OPERATION_TYPES silently started a new checkpoint at "now"; src/checkpoint/checkpointIdentity.ts
 * adopts or refuses those derived-ID checkpoints.) The fingerprint is stored with the checkpoint and
 * decides whether a start continues or refuses (src/app/resumePoint.ts).
 */
import { createHash } from 'node:crypto';
import { BSON, type Document } from 'mongodb';
import {
  parseWatchTargets,
  formatTarget,
  streamScope,
  type StreamScope,
  type WatchTarget,
} from './watchTargets.js';
import { parsePipeline } from './pipeline.js';
import { debeziumTopicPrefix, type OutputFormat } from './outputFormat.js';
import { parseStartAt } from './startAt.js';
import {
  canonicalCheckpointMode,
  type BEFORE_CHANGE_MODES,
  type CheckpointMode,
  type CheckpointModeSetting,
  type FULL_DOCUMENT_MODES,
  type LOG_LEVELS,
  type SASL_MECHANISMS,
  type KAFKA_COMPRESSIONS,
  type RECORD_TIMESTAMPS,
  type RecordKey,
} from './schema.js';

/**
 * The checkpoint ID when RELAY_CHECKPOINT_ID is unset. A config default, so it lives here (config
 * imports no other layer); the checkpoint identity decisions import it from here.
 */
export const DEFAULT_CHECKPOINT_ID = 'default';

export interface RawConfig {
  mongodb: { uri: string };
  relay: {
    watch: string;
    pipeline: string;
    fullDocument: (typeof FULL_DOCUMENT_MODES)[number];
    fullDocumentBeforeChange: (typeof BEFORE_CHANGE_MODES)[number];
    operationTypes: string;
    startAt: string;
    startAfterToken: string;
    onHistoryLost: 'fail' | 'restart-from-now';
    snapshot: 'never' | 'initial' | 'when-needed';
    allowWatchChange: boolean;
    maxInFlight: number;
    maxInFlightBytes: number;
    readerThread: boolean;
    maxAwaitMs: number;
    valueFormat: 'relaxed' | 'canonical';
    outputFormat: OutputFormat;
    partitionBy: 'document' | 'change-id';
    key: RecordKey;
    shutdownTimeoutMs: number;
    onUnreadableEvent: 'skip' | 'fail';
    delivery: 'at-least-once' | 'exactly-once';
    transactionMaxMs: number;
    progressLogEvery: number;
  };
  checkpoint: {
    id: string;
    uri: string;
    database: string;
    collection: string;
    mode: CheckpointModeSetting;
    maxEvents: number;
    maxDelayMs: number;
    timeoutMs: number;
    heartbeatMs: number;
  };
  lease: { ttlMs: number; renewMs: number; whenHeld: 'wait' | 'exit' };
  kafka: {
    brokers: string;
    clientId: string;
    topic: string;
    deadLetterTopic: string;
    ssl: boolean;
    sslCaFile: string;
    sslCertFile: string;
    sslKeyFile: string;
    sslKeyPassword: string;
    sslServername: string;
    saslMechanism: (typeof SASL_MECHANISMS)[number];
    saslUsername: string;
    saslPassword: string;
    createTopics: boolean;
    topicPartitions: number;
    replicationFactor: number;
    maxMessageBytes: number;
    maxBatchBytes: number;
    retryMaxMs: number;
    compression: (typeof KAFKA_COMPRESSIONS)[number];
    recordTimestamp: (typeof RECORD_TIMESTAMPS)[number];
    transactionalId: string;
    positionsTopic: string;
    transactionTimeoutMs: number;
    progressTimeoutMs: number;
  };
  metrics: { host: string; port: number; nsLabelLimit: number; oplogIntervalMs: number };
  log: { level: (typeof LOG_LEVELS)[number] };
}

/** The parts of the configuration that decide which changes the stream selects. */
export interface WatchSelection {
  watch: string[];
  /** RELAY_PIPELINE as canonical Extended JSON. */
  pipeline: string;
  operationTypes: string[];
}

/** Where a stream with no checkpoint starts. */
export type InitialPosition =
  | { kind: 'now' }
  | { kind: 'clusterTime'; time: BSON.Timestamp }
  | { kind: 'token'; token: { _data: string } };

export interface RelayConfig extends RawConfig {
  /** The checkpoint mode by its canonical name (aliases resolved). */
  checkpoint: RawConfig['checkpoint'] & { mode: CheckpointMode };
  derived: {
    targets: WatchTarget[];
    scope: StreamScope;
    pipeline: Document[];
    operationTypes: ReadonlySet<string> | null;
    checkpointId: string;
    /** True when RELAY_CHECKPOINT_ID is unset and the ID is "default". */
    checkpointIdDefault: boolean;
    /** Identifies what the stream selects; a checkpoint written under another fingerprint is refused. */
    fingerprint: string;
    /** What the fingerprint is made of, stored with the checkpoint so a refusal can show both sides. */
    selection: WatchSelection;
    initialPosition: InitialPosition;
    brokers: string[];
    checkpointUri: string;
    /** KAFKA_TRANSACTIONAL_ID, or its default derived from the checkpoint id. */
    transactionalId: string;
    /** RELAY_OUTPUT_FORMAT=debezium: the logical name (topic.prefix) KAFKA_TOPIC gives; else null. */
    debeziumName: string | null;
  };
}

export function deriveSettings(raw: RawConfig): RelayConfig {
  const targets = parseWatchTargets(raw.relay.watch);
  const pipeline = parsePipeline(raw.relay.pipeline);
  const opTypes = raw.relay.operationTypes
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const selection: WatchSelection = {
    watch: targets.map(formatTarget).sort(),
    pipeline: BSON.EJSON.stringify(pipeline, { relaxed: false }),
    operationTypes: [...opTypes].sort(),
  };
  const fingerprint = createHash('sha256').update(JSON.stringify(selection)).digest('hex').slice(0, 16);
  const checkpointId = raw.checkpoint.id !== '' ? raw.checkpoint.id : DEFAULT_CHECKPOINT_ID;
  // Checks across settings live in crossChecks.ts: the loader runs them before calling this.
  const checkpointTimeoutMs = raw.checkpoint.timeoutMs || defaultStoreTimeout(raw.lease);
  return {
    ...raw,
    relay: {
      ...raw.relay,
      maxInFlight: raw.relay.maxInFlight || DEFAULT_MAX_IN_FLIGHT[raw.relay.delivery],
    },
    checkpoint: {
      ...raw.checkpoint,
      mode: canonicalCheckpointMode(raw.checkpoint.mode),
      timeoutMs: checkpointTimeoutMs,
    },
    derived: {
      targets,
      scope: streamScope(targets),
      pipeline,
      operationTypes: opTypes.length > 0 ? new Set(opTypes) : null,
      checkpointId,
      checkpointIdDefault: raw.checkpoint.id === '',
      fingerprint,
      selection,
      initialPosition: initialPosition(raw.relay.startAt, raw.relay.startAfterToken),
      brokers: raw.kafka.brokers
        .split(',')
        .map((b) => b.trim())
        .filter((b) => b !== ''),
      checkpointUri: raw.checkpoint.uri !== '' ? raw.checkpoint.uri : raw.mongodb.uri,
      transactionalId:
        raw.kafka.transactionalId !== '' ? raw.kafka.transactionalId : `mongo-kafka-relay.${checkpointId}`,
      debeziumName: raw.relay.outputFormat === 'debezium' ? debeziumTopicPrefix(raw.kafka.topic) : null,
    },
  };
}

/** Leaves a renewal that timed out room for another attempt before the lease runs out. */
/** RELAY_MAX_IN_FLIGHT when 0 (unset), by delivery mode; see its reference. */
export const DEFAULT_MAX_IN_FLIGHT = { 'at-least-once': 2000, 'exactly-once': 8000 } as const;

export function defaultStoreTimeout(lease: { ttlMs: number; renewMs: number }): number {
  return Math.min(5000, Math.max(1000, Math.floor((lease.ttlMs - lease.renewMs) / 2)));
}

function initialPosition(startAt: string, token: string): InitialPosition {
  if (token !== '') return { kind: 'token', token: { _data: token } };
  return parseStartAt(startAt);
}
