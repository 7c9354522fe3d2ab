/**
 * Errors the consumer helper raises. Each message says what is wrong and what to do about it.
 */

/** Invalid options passed to `createChangeConsumer()`. */
export class ChangeConsumerConfigError extends Error {
  override readonly name = 'ChangeConsumerConfigError';
}

/**
 * Thrown by `start()` when the seen collection already has a TTL index on `seenAt` whose
 * `expireAfterSeconds` differs from the configured one and `onTtlMismatch` is `'fail'`.
 */
export class TtlIndexMismatchError extends Error {
  override readonly name = 'TtlIndexMismatchError';

  constructor(
    readonly namespace: string,
    readonly indexName: string,
    readonly existingExpireAfterSeconds: number | undefined,
    readonly configuredExpireAfterSeconds: number,
  ) {
    const existing =
      existingExpireAfterSeconds === undefined
        ? 'no expireAfterSeconds'
        : `expireAfterSeconds=${existingExpireAfterSeconds}`;
    super(
      `Seen collection ${namespace} has index "${indexName}" on seenAt with ${existing}, ` +
        `but the consumer is configured with expireAfterSeconds=${configuredExpireAfterSeconds}. ` +
        `Either configure seen.expireAfterSeconds to match the index, set seen.onTtlMismatch to 'update' ` +
        `to change the index with collMod at start-up, or change it yourself: ` +
        `db.getSiblingDB(${JSON.stringify(namespace.split('.')[0])}).runCommand({ collMod: ${JSON.stringify(
          namespace.slice(namespace.indexOf('.') + 1),
        )}, index: { name: ${JSON.stringify(indexName)}, expireAfterSeconds: ${configuredExpireAfterSeconds} } }).`,
    );
  }
}

/** Thrown by `start()` when `onTtlMismatch: 'update'` could not change the TTL of the seen index. */
export class TtlIndexUpdateError extends Error {
  override readonly name = 'TtlIndexUpdateError';

  constructor(
    readonly namespace: string,
    readonly indexName: string,
    readonly configuredExpireAfterSeconds: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Could not change expireAfterSeconds of index "${indexName}" on ${namespace} to ` +
        `${configuredExpireAfterSeconds}: ${detail}. The user needs the collMod privilege on the database; ` +
        `alternatively drop the index (it is re-created at start-up) or set seen.onTtlMismatch to 'fail'.`,
      options,
    );
  }
}

/** Thrown by `start()` in transactional mode when the MongoDB deployment cannot run transactions. */
export class TransactionsUnsupportedError extends Error {
  override readonly name = 'TransactionsUnsupportedError';
}

/**
 * Throw this from a handler for a record that can never succeed (invalid data, a mapping conflict: not a
 * transient outage): the helper skips any further retries and dead-letters the record at once.
 */
export class PermanentHandlerError extends Error {
  override readonly name: string = 'PermanentHandlerError';
}

/**
 * Throw this from a handler for a failure that will pass (a 429/503, a timeout, a failover): the record
 * is retried with backoff and its partition waits, whatever `retry.classify` says.
 */
export class RetryableHandlerError extends Error {
  override readonly name = 'RetryableHandlerError';
}

/**
 * The abort reason of `context.signal` when a handler call ran longer than `handlerTimeoutMs`. The call
 * counts as a failed attempt (retryable); the helper does not wait for a handler that ignores its signal.
 */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`the handler did not finish within ${timeoutMs} ms (handlerTimeoutMs); its signal was aborted`);
  }
}

/**
 * The abort reason of `context.signal` when this member lost the record's partition in a rebalance: the
 * record now belongs to another member, which will handle it. Stop and write nothing more.
 */
export class PartitionRevokedError extends Error {
  override readonly name = 'PartitionRevokedError';

  constructor(topic: string, partition: number, cause?: unknown) {
    super(`partition ${topic}/${partition} was revoked by a rebalance`, { cause });
  }
}

/**
 * The abort reason of `context.signal` after `stop()`; also how an interrupted wait ends internally.
 * The record in hand is committed only if its handler still finishes successfully.
 */
export class ConsumerStoppedError extends Error {
  override readonly name = 'ConsumerStoppedError';

  constructor() {
    super('The change consumer is stopping');
  }
}

/**
 * The rejection of `consumer.closed` when kafkajs gave up on the Kafka consumer (it crashed and will
 * not restart it): the consumer consumes nothing more. Restart the process (or create a new consumer).
 */
export class ConsumerCrashedError extends Error {
  override readonly name = 'ConsumerCrashedError';

  constructor(groupId: string, cause: unknown) {
    super(
      `The Kafka consumer of group ${groupId} crashed and kafkajs will not restart it (${errorMessage(cause)}); ` +
        `this consumer has stopped. Restart the process, or create and start a new ChangeConsumer.`,
      { cause },
    );
  }
}

/** Thrown by `start()` when a dead-letter topic of a subscribed topic does not exist. */
export class DeadLetterTopicMissingError extends Error {
  override readonly name = 'DeadLetterTopicMissingError';

  constructor(readonly missing: ReadonlyArray<{ readonly topic: string; readonly deadLetterTopic: string }>) {
    const list = missing.map((m) => `${m.deadLetterTopic} (for ${m.topic})`).join(', ');
    super(
      `Dead-letter topic(s) missing: ${list}. A failing record would wait forever for it. ` +
        `Create them (e.g. kafka-topics.sh --create --topic <name> --partitions <as many as the source topic>), ` +
        `or point deadLetter.topic at an existing topic.`,
    );
  }
}

/** One topic whose records can outlive the seen marks (see `seen.retentionCheck`). */
export interface RetentionFinding {
  readonly topic: string;
  /** Longest time a record can stay readable (ms), or 'unlimited'. */
  readonly longestLifetimeMs: number | 'unlimited';
  readonly retentionMs: number;
  readonly segmentMs: number;
  readonly cleanupPolicy: string;
}

export function describeRetentionFinding(finding: RetentionFinding): string {
  if (finding.longestLifetimeMs === 'unlimited') {
    return `${finding.topic} keeps records forever (retention.ms=${finding.retentionMs}, cleanup.policy=${finding.cleanupPolicy})`;
  }
  return (
    `${finding.topic} can keep a record for up to ${finding.longestLifetimeMs} ms ` +
    `(retention.ms=${finding.retentionMs} + segment.ms=${finding.segmentMs} + 300000 ms until the broker's next deletion check)`
  );
}

/** Thrown by `start()` with `seen.retentionCheck: 'fail'` when a topic can keep records longer than the seen TTL. */
export class RetentionExceedsTtlError extends Error {
  override readonly name = 'RetentionExceedsTtlError';

  constructor(
    readonly findings: readonly RetentionFinding[],
    readonly expireAfterSeconds: number,
    readonly minimumSafeSeconds: number | undefined,
  ) {
    super(
      `Seen marks expire after ${expireAfterSeconds} s, but ${findings.map(describeRetentionFinding).join('; ')}. ` +
        `A replay from the earliest offset (a consumer-group reset, a new group starting from the beginning) would ` +
        `re-apply changes whose marks have expired, after newer ones. ` +
        (minimumSafeSeconds === undefined
          ? `Give the topic a finite retention.ms (and no compaction), `
          : `Set seen.expireAfterSeconds to at least ${minimumSafeSeconds}, or lower the topics' retention.ms, `) +
        `or set seen.retentionCheck to 'warn' if replays from the earliest offset can never happen.`,
    );
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** The error's class name, for the dead-letter header (`Error` for plain errors, `unknown` for non-errors). */
export function errorName(error: unknown): string {
  if (error instanceof Error) return error.name || error.constructor.name || 'Error';
  return typeof error;
}
