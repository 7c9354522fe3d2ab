/**
 * How every change becomes a record (src/pipeline/toRecord.ts), from the settings: value format,
 * partitioning, key, and the drop-in output format with what it needs.
 */
import { randomUUID } from 'node:crypto';
import type { RelayConfig } from '../config/settings.js';
import type { RecordOptions } from '../pipeline/toRecord.js';
import { VERSION } from './version.js';

export function recordOptions(config: RelayConfig): RecordOptions {
  const options: RecordOptions = {
    format: config.relay.valueFormat,
    partitionBy: config.relay.partitionBy,
    key: config.relay.key,
    output: config.relay.outputFormat,
  };
  if (config.relay.outputFormat === 'debezium') {
    // crossChecks.ts refused a KAFKA_TOPIC without a prefix, so the name is there.
    options.debezium = { name: config.derived.debeziumName ?? '', runId: randomUUID(), version: VERSION };
  }
  return options;
}
