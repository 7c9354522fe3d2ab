/**
 * Checks that involve more than one setting. Each runs only when the settings it reads are valid on
 * their own, so one bad value is reported once, and all problems still come out together.
 */
import { defaultStoreTimeout, type RawConfig } from './settings.js';
import type { ConfigWarning } from './unknownVariables.js';
import { kafkaTlsProblems } from './kafkaTls.js';
import { debeziumTopicPrefix } from './outputFormat.js';
import { EXPANDED_OPERATION_TYPES, isExpandedOperationType, splitOperationTypes } from './operationTypes.js';

/** A problem found by a cross-field check, attributed to the key the operator should change. */
export interface CrossProblem {
  key: string;
  message: string;
}

export interface CrossCheckOptions {
  /** Kafka is not used by the command (token show/set/clear, status): skip the Kafka checks. */
  kafkaUnused: boolean;
}

export function crossFieldProblems(
  raw: RawConfig,
  invalid: ReadonlySet<string>,
  options: CrossCheckOptions,
): CrossProblem[] {
  const problems: CrossProblem[] = [];
  const valid = (...keys: string[]): boolean => keys.every((k) => !invalid.has(k));
  if (valid('lease.renewMs', 'lease.ttlMs') && raw.lease.renewMs * 2 > raw.lease.ttlMs) {
    problems.push({
      key: 'lease.renewMs',
      message: `must be at most half of RELAY_LEASE_TTL_MS (${raw.lease.ttlMs}), so a renewal can fail once without losing the lease`,
    });
  }
  if (!options.kafkaUnused && valid('kafka.saslMechanism') && raw.kafka.saslMechanism !== 'none') {
    for (const key of ['kafka.saslUsername', 'kafka.saslPassword'] as const) {
      const field = key === 'kafka.saslUsername' ? 'saslUsername' : 'saslPassword';
      if (valid(key) && raw.kafka[field] === '') {
        problems.push({
          key,
          message: `must be set when KAFKA_SASL_MECHANISM is ${raw.kafka.saslMechanism}`,
        });
      }
    }
  }
  if (valid('checkpoint.timeoutMs', 'lease.ttlMs', 'lease.renewMs')) {
    const timeoutMs = raw.checkpoint.timeoutMs || defaultStoreTimeout(raw.lease);
    if (timeoutMs >= raw.lease.ttlMs) {
      problems.push({
        key: 'checkpoint.timeoutMs',
        message: `must be below RELAY_LEASE_TTL_MS (${raw.lease.ttlMs}), or one hung renewal outlives the lease`,
      });
    }
  }
  problems.push(...stateTopicProblems(raw, valid));
  problems.push(...outputFormatProblems(raw, valid));
  const tlsKeys = ['kafka.ssl', 'kafka.sslCaFile', 'kafka.sslCertFile', 'kafka.sslKeyFile'];
  if (!options.kafkaUnused && valid(...tlsKeys)) problems.push(...kafkaTlsProblems(raw.kafka));
  return problems;
}

/**
 * RELAY_KEY=document makes a topic a state topic: compaction keeps the latest record per key, and only
 * per partition, so every record of one document must land in one partition (RELAY_PARTITION_BY=document),
 * and the latest record must hold the whole document (an update without fullDocument holds a delta).
 */
function stateTopicProblems(raw: RawConfig, valid: (...keys: string[]) => boolean): CrossProblem[] {
  if (!valid('relay.key') || raw.relay.key !== 'document') return [];
  const problems: CrossProblem[] = [];
  if (valid('relay.partitionBy') && raw.relay.partitionBy !== 'document') {
    problems.push({
      key: 'relay.partitionBy',
      message:
        `must be document when RELAY_KEY=document: compaction keeps the latest ` +
        "record per key within one partition, so all of a document's records must share a partition",
    });
  }
  if (valid('relay.fullDocument') && raw.relay.fullDocument === 'default') {
    problems.push({
      key: 'relay.fullDocument',
      message:
        'must be updateLookup, whenAvailable or required when RELAY_KEY=document: an update ' +
        'without fullDocument carries only the changed fields, so a compacted topic would keep a delta, not the document',
    });
  }
  return problems;
}

/** The drop-in formats fix the key and, for Debezium, the topic names (src/config/outputFormat.ts). */
function outputFormatProblems(raw: RawConfig, valid: (...keys: string[]) => boolean): CrossProblem[] {
  if (!valid('relay.outputFormat') || raw.relay.outputFormat === 'relay') return [];
  const format = raw.relay.outputFormat;
  const problems: CrossProblem[] = [];
  if (valid('relay.key') && raw.relay.key !== 'change-id') {
    problems.push({
      key: 'relay.key',
      message: `must be change-id (the default) when RELAY_OUTPUT_FORMAT=${format}: that format defines the record key`,
    });
  }
  if (format === 'debezium' && valid('kafka.topic') && debeziumTopicPrefix(raw.kafka.topic) === null) {
    problems.push({
      key: 'kafka.topic',
      message:
        'must be <prefix>.{db}.{coll} when RELAY_OUTPUT_FORMAT=debezium: Debezium names topics ' +
        '<topic.prefix>.<db>.<coll> and writes the prefix into every record (source.name)',
    });
  }
  return problems;
}

export function crossFieldWarnings(raw: RawConfig, invalid: ReadonlySet<string>): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const valid = (...keys: string[]): boolean => keys.every((k) => !invalid.has(k));
  if (valid('relay.operationTypes')) {
    const expanded = splitOperationTypes(raw.relay.operationTypes).filter(isExpandedOperationType);
    if (expanded.length > 0) {
      warnings.push({
        variable: 'RELAY_OPERATION_TYPES',
        message:
          `RELAY_OPERATION_TYPES lists ${expanded.join(', ')}: MongoDB reports expanded events (${EXPANDED_OPERATION_TYPES.join(', ')}) ` +
          'only to change streams opened with showExpandedEvents, which the relay does not request, so none will be published',
      });
    }
  }
  if (valid('kafka.saslMechanism') && raw.kafka.saslMechanism === 'none') {
    for (const [variable, value] of [
      ['KAFKA_SASL_USERNAME', raw.kafka.saslUsername],
      ['KAFKA_SASL_PASSWORD', raw.kafka.saslPassword],
    ] as const) {
      if (value !== '') {
        warnings.push({
          variable,
          message: `${variable} is set but KAFKA_SASL_MECHANISM is none: it is not used (set the mechanism to authenticate)`,
        });
      }
    }
  }
  if (valid('relay.key', 'relay.operationTypes') && raw.relay.key === 'document') {
    const types = splitOperationTypes(raw.relay.operationTypes);
    if (types.length > 0 && !types.includes('delete')) {
      warnings.push({
        variable: 'RELAY_OPERATION_TYPES',
        message:
          'RELAY_KEY=document, but RELAY_OPERATION_TYPES leaves out delete: no tombstones are written, so a ' +
          'compacted topic keeps deleted documents',
      });
    }
  }
  if (
    valid('relay.startAt', 'relay.startAfterToken') &&
    raw.relay.startAfterToken !== '' &&
    raw.relay.startAt !== 'now'
  ) {
    warnings.push({
      variable: 'RELAY_START_AT',
      message: 'RELAY_START_AT is ignored: RELAY_START_AFTER_TOKEN is set and takes precedence',
    });
  }
  return warnings;
}
