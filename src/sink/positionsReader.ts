/**
 * Reads a checkpoint's last committed position from KAFKA_POSITIONS_TOPIC with read_committed
 * isolation (RELAY_DELIVERY=exactly-once).
 *
 * Where "the end" is: the caller first commits a marker record (its own key, the position key's
 * partition, a value no one else writes) in a transaction of the freshly initialised producer. That
 * initialisation fenced every earlier producer of the transactional id and completed or aborted its
 * open transaction, so once the marker is read, every transaction that could have written this
 * checkpoint's position has been decided and read: the last position seen before it is the one.
 * kafkajs has no manual partition assignment, so the read uses a consumer group of its own that
 * commits nothing (it disappears when the reader leaves).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { decodePosition, type CommittedPosition } from './positions.js';

/** The marker's key: checkpoint ids never contain "/", so it cannot be a position key. */
export function markerKey(checkpointId: string): string {
  return `${checkpointId}/reader-marker`;
}

export class PositionsReadTimeoutError extends Error {
  constructor(topic: string, ms: number) {
    super(
      `the positions topic "${topic}" could not be read to its end within ${ms} ms: check that the ` +
        "relay's principal may READ it (and DESCRIBE its consumer groups), then restart the relay",
    );
    this.name = 'PositionsReadTimeoutError';
  }
}

export async function readCommittedPosition(
  kafka: Kafka,
  topic: string,
  checkpointId: string,
  marker: string,
  timeoutMs: number,
): Promise<CommittedPosition | null> {
  const consumer = kafka.consumer({
    groupId: `mongo-kafka-relay.positions-reader.${randomUUID()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false,
  });
  const last: { value: string | null } = { value: null };
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const ownMarker = markerKey(checkpointId);
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new PositionsReadTimeoutError(topic, timeoutMs)), timeoutMs);
      // Errors of the group join and fetch loop (e.g. GROUP_AUTHORIZATION_FAILED) end the read.
      consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            const key = message.key?.toString('utf8');
            if (key === checkpointId) last.value = message.value ? message.value.toString('utf8') : null;
            else if (key === ownMarker && message.value?.toString('utf8') === marker) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return last.value === null ? null : decodePosition(last.value);
}
