/**
 * The validated configuration in the shape the relay uses, with the values derived from it
 * (parsed targets, the stream scope, the checkpoint ID and the watch fingerprint).
 */
import { createHash } from 'node:crypto';
import { BSON, type Document } from 'mongodb';
import {
  parseWatchTargets,
  formatTarget,
  streamScope,
  type StreamScope,
  type WatchTarget,
} from '../source/watchTargets.js';
import { parsePipeline } from './pipeline.js';
import {
  canonicalCheckpointMode,
  type BEFORE_CHANGE_MODES,
  type CheckpointMode,
  type CheckpointModeSetting,
  type FULL_DOCUMENT_MODES,
  type LOG_LEVELS,
  type SASL_MECHANISMS,
} from './schema.js';

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
    allowWatchChange: boolean;
    maxInFlight: number;
    maxInFlightBytes: number;
    readerThread: boolean;
    maxAwaitMs: number;
    valueFormat: 'relaxed' | 'canonical';
    partitionBy: 'document' | 'change-id';
    shutdownTimeoutMs: number;
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
    heartbeatMs: number;
  };
  lease: { ttlMs: number; renewMs: number; whenHeld: 'wait' | 'exit' };
  kafka: {
    brokers: string;
    clientId: string;
    topic: string;
    deadLetterTopic: string;
    ssl: boolean;
    saslMechanism: (typeof SASL_MECHANISMS)[number];
    saslUsername: string;
    saslPassword: string;
    createTopics: boolean;
    topicPartitions: number;
    replicationFactor: number;
    maxMessageBytes: number;
    maxBatchBytes: number;
    retryMaxMs: number;
  };
  metrics: { host: string; port: number };
  log: { level: (typeof LOG_LEVELS)[number] };
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
    checkpointIdDerived: boolean;
    /** Identifies what the stream selects; a checkpoint written under another fingerprint is refused. */
    fingerprint: string;
    initialPosition: InitialPosition;
    brokers: string[];
    checkpointUri: string;
  };
}

export function deriveSettings(raw: RawConfig): RelayConfig {
  const targets = parseWatchTargets(raw.relay.watch);
  const pipeline = parsePipeline(raw.relay.pipeline);
  const opTypes = raw.relay.operationTypes
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const selection = {
    watch: targets.map(formatTarget).sort(),
    pipeline: BSON.EJSON.stringify(pipeline, { relaxed: false }),
    operationTypes: [...opTypes].sort(),
  };
  const fingerprint = createHash('sha256').update(JSON.stringify(selection)).digest('hex').slice(0, 16);
  const checkpointId = raw.checkpoint.id !== '' ? raw.checkpoint.id : `relay-${fingerprint}`;
  if (raw.lease.renewMs * 2 > raw.lease.ttlMs) {
    throw new Error(
      `RELAY_LEASE_RENEW_MS (lease.renewMs): must be at most half of RELAY_LEASE_TTL_MS (${raw.lease.ttlMs}): value was ${raw.lease.renewMs}`,
    );
  }
  if (
    raw.kafka.saslMechanism !== 'none' &&
    (raw.kafka.saslUsername === '' || raw.kafka.saslPassword === '')
  ) {
    throw new Error(
      `KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD: must both be set when KAFKA_SASL_MECHANISM is ${raw.kafka.saslMechanism}`,
    );
  }
  return {
    ...raw,
    checkpoint: { ...raw.checkpoint, mode: canonicalCheckpointMode(raw.checkpoint.mode) },
    derived: {
      targets,
      scope: streamScope(targets),
      pipeline,
      operationTypes: opTypes.length > 0 ? new Set(opTypes) : null,
      checkpointId,
      checkpointIdDerived: raw.checkpoint.id === '',
      fingerprint,
      initialPosition: initialPosition(raw.relay.startAt, raw.relay.startAfterToken),
      brokers: raw.kafka.brokers.split(',').map((b) => b.trim()),
      checkpointUri: raw.checkpoint.uri !== '' ? raw.checkpoint.uri : raw.mongodb.uri,
    },
  };
}

function initialPosition(startAt: string, token: string): InitialPosition {
  if (token !== '') return { kind: 'token', token: { _data: token } };
  if (startAt === 'now') return { kind: 'now' };
  const clusterTime = /^(\d+)(?:\.(\d+))?$/.exec(startAt);
  if (clusterTime) {
    return {
      kind: 'clusterTime',
      time: new BSON.Timestamp({ t: Number(clusterTime[1]), i: Number(clusterTime[2] ?? 0) }),
    };
  }
  return {
    kind: 'clusterTime',
    time: new BSON.Timestamp({ t: Math.floor(Date.parse(startAt) / 1000), i: 0 }),
  };
}
