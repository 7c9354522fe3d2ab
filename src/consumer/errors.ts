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
 * Throw this from a handler for a record that can never succeed (invalid data, not a transient outage):
 * the helper skips the remaining retries and dead-letters the record at once.
 */
export class PermanentHandlerError extends Error {
  override readonly name = 'PermanentHandlerError';
}

/** Internal: `stop()` interrupted a wait; the record in hand is left uncommitted and will be redelivered. */
export class ConsumerStoppedError extends Error {
  override readonly name = 'ConsumerStoppedError';

  constructor() {
    super('The change consumer is stopping');
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
