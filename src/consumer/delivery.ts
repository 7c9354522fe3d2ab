/**
 * The two delivery modes: how one handler call (one record, or one batch) relates to the seen marks.
 *
 * - idempotent-handler: the handler runs; the caller writes the marks afterwards (at least once).
 * - transactional: one MongoDB transaction inserts the marks and runs the handler with its session; both
 *   commit or neither (effectively once for the handler's session writes). By default the transaction
 *   reads at `snapshot` and commits with `w: 'majority'`, so a committed mark (and the handler's writes)
 *   cannot be rolled back by a failover after the offset is committed.
 */
import type { Document, MongoClient, TransactionOptions } from 'mongodb';

import { TransactionsUnsupportedError, errorMessage } from './errors.js';
import type { SeenMark, SeenStore } from './seenStore.js';
import type {
  BatchContext,
  ChangeBatchHandler,
  ChangeBatchItem,
  ChangeHandler,
  HandlerContext,
  TransactionalBatchContext,
  TransactionalHandlerContext,
} from './types.js';

/** What the processor lends one handler call. */
export interface AttemptContext {
  readonly topic: string;
  readonly partition: number;
  readonly attempt: number;
  readonly signal: AbortSignal;
  heartbeat(): Promise<void>;
}

/** The application's handler: one record per call, or a batch per call. */
export type Handlers<TSchema extends Document, C extends HandlerContext, B extends BatchContext> =
  | { readonly kind: 'record'; readonly handler: ChangeHandler<TSchema, C> }
  | { readonly kind: 'batch'; readonly handler: ChangeBatchHandler<TSchema, B> };

/**
 * Runs the handler for `items` (one item unless `batches`). Throws the handler's error; resolves
 * `'duplicate'` when a seen mark shows that another delivery of one of the changes won.
 */
export interface DeliveryStrategy<TSchema extends Document> {
  /** False: the caller writes the seen marks after `deliver` resolved `'handled'`. */
  readonly writesSeenMark: boolean;
  /** True: the items of a chunk go to the handler together. */
  readonly batches: boolean;
  deliver(
    items: ReadonlyArray<ChangeBatchItem<TSchema>>,
    context: AttemptContext,
  ): Promise<'handled' | 'duplicate'>;
}

function recordContext(item: ChangeBatchItem<Document>, context: AttemptContext): HandlerContext {
  return {
    changeId: item.changeId,
    record: item.record,
    attempt: context.attempt,
    signal: context.signal,
    heartbeat: context.heartbeat,
  };
}

function batchContext(context: AttemptContext): BatchContext {
  return {
    topic: context.topic,
    partition: context.partition,
    attempt: context.attempt,
    signal: context.signal,
    heartbeat: context.heartbeat,
  };
}

/** Mode `idempotent-handler`. */
export class IdempotentHandlerDelivery<TSchema extends Document> implements DeliveryStrategy<TSchema> {
  readonly writesSeenMark = false;
  readonly batches: boolean;

  constructor(private readonly handlers: Handlers<TSchema, HandlerContext, BatchContext>) {
    this.batches = handlers.kind === 'batch';
  }

  async deliver(items: ReadonlyArray<ChangeBatchItem<TSchema>>, context: AttemptContext): Promise<'handled'> {
    if (this.handlers.kind === 'batch') {
      await this.handlers.handler(items, batchContext(context));
    } else {
      for (const item of items) await this.handlers.handler(item.event, recordContext(item, context));
    }
    return 'handled';
  }
}

/** Thrown inside the transaction to abort it when a seen mark already exists. */
class AlreadySeenInTransaction extends Error {
  override readonly name = 'AlreadySeenInTransaction';
}

/** Thrown inside the transaction when the call's signal fired: abort, do not commit. */
class AbortedInTransaction extends Error {
  override readonly name = 'AbortedInTransaction';
}

/** Transaction options the helper uses unless the application overrides them (key by key). */
export const DEFAULT_TRANSACTION_OPTIONS: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: { w: 'majority' },
};

export function transactionOptionsWithDefaults(options: TransactionOptions | undefined): TransactionOptions {
  return { ...DEFAULT_TRANSACTION_OPTIONS, ...options };
}

/** The marks a delivered batch stands for. */
export function handledMarks(items: ReadonlyArray<ChangeBatchItem<Document>>): SeenMark[] {
  return items.map((item) => ({
    changeId: item.changeId,
    topic: item.record.topic,
    partition: item.record.partition,
    offset: item.record.offset,
    outcome: 'handled',
  }));
}

/**
 * Mode `transactional`. The marks are inserted first, so a change another delivery already committed
 * aborts before the handler runs. The driver's `withTransaction` may call the handler more than once
 * (transient transaction errors); only the committed attempt's session writes take effect. A call whose
 * signal fired before it began starts no transaction. One that finishes after its signal fired may still
 * commit: the mark in the same transaction keeps it once (another delivery of the change conflicts with
 * it, then finds the mark), and in order (the next owner cannot pass this change before it resolves).
 */
export class TransactionalDelivery<TSchema extends Document> implements DeliveryStrategy<TSchema> {
  readonly writesSeenMark = true;
  readonly batches: boolean;
  private readonly transactionOptions: TransactionOptions;

  constructor(
    private readonly handlers: Handlers<TSchema, TransactionalHandlerContext, TransactionalBatchContext>,
    private readonly client: MongoClient,
    private readonly store: SeenStore,
    transactionOptions: TransactionOptions | undefined,
  ) {
    this.batches = handlers.kind === 'batch';
    this.transactionOptions = transactionOptionsWithDefaults(transactionOptions);
  }

  async deliver(
    items: ReadonlyArray<ChangeBatchItem<TSchema>>,
    context: AttemptContext,
  ): Promise<'handled' | 'duplicate'> {
    const session = this.client.startSession();
    try {
      await session.withTransaction(async (txnSession) => {
        if (context.signal.aborted) throw new AbortedInTransaction();
        const mark = await this.store.insertMarksInTransaction(handledMarks(items), txnSession);
        if (mark === 'already-seen') throw new AlreadySeenInTransaction();
        const extra = { session: txnSession, mongoClient: this.client };
        if (this.handlers.kind === 'batch') {
          await this.handlers.handler(items, { ...batchContext(context), ...extra });
        } else {
          for (const item of items) {
            await this.handlers.handler(item.event, { ...recordContext(item, context), ...extra });
          }
        }
      }, this.transactionOptions);
      return 'handled';
    } catch (error) {
      if (error instanceof AlreadySeenInTransaction) return 'duplicate';
      if (error instanceof AbortedInTransaction) throw context.signal.reason;
      throw error;
    } finally {
      await session.endSession();
    }
  }
}

/**
 * Fails fast when the deployment cannot run transactions (a standalone mongod, or a server without
 * sessions): reads the seen collection inside a transaction with the options deliveries will use.
 */
export async function assertTransactionsSupported(
  client: MongoClient,
  store: SeenStore,
  transactionOptions: TransactionOptions | undefined,
): Promise<void> {
  const session = client.startSession();
  try {
    await session.withTransaction(async (txnSession) => {
      await store.findSeen(['mongo-kafka-relay:transaction-probe'], txnSession);
    }, transactionOptionsWithDefaults(transactionOptions));
  } catch (error) {
    throw new TransactionsUnsupportedError(
      `mode 'transactional' needs MongoDB transactions (a replica set or a sharded cluster), ` +
        `but a test transaction on ${store.namespace} failed: ${errorMessage(error)}. ` +
        `Use mode 'idempotent-handler', or run MongoDB as a replica set (a single-node one will do).`,
      { cause: error },
    );
  } finally {
    await session.endSession();
  }
}
