/**
 * The MongoDB client of the checkpoint store — always its own client, also when RELAY_CHECKPOINT_URI
 * is unset: its defaults are durable (majority writes with a timeout, majority reads, the primary) and
 * its connections are never held by a change stream's waiting getMore. Each operation also carries
 * these settings explicitly (src/checkpoint/checkpointStore.ts), so CLI clients get them too.
 */
import type { MongoClientOptions } from 'mongodb';
import type { RelayConfig } from '../config/settings.js';

export function storeClientOptions(config: Pick<RelayConfig, 'checkpoint'>): MongoClientOptions {
  const timeoutMs = config.checkpoint.timeoutMs;
  return {
    appName: 'mongo-kafka-relay-checkpoint',
    writeConcern: { w: 'majority', wtimeoutMS: timeoutMs },
    readConcern: { level: 'majority' },
    readPreference: 'primary',
    retryWrites: true,
    // A dead connection is noticed within a few operation timeouts, not the OS default.
    socketTimeoutMS: Math.max(timeoutMs * 3, 30_000),
  };
}
