import type { Document, MongoClient, TransactionOptions } from 'mongodb';

import { TransactionsUnsupportedError, errorMessage } from './errors.js';
import type { SeenStore } from './seen-store.js';
import type {
  ChangeEvent,
  ChangeHandler,
  HandlerContext,
  RecordMetadata,
  TransactionalHandlerContext,
} from './types.js';

/** One handler call for one record. */
export interface DeliveryInput<TSchema extends Document> {
  readonly event: ChangeEvent<TSchema>;
  readonly context: HandlerContext;
  readonly record: RecordMetadata;
}

/**
 * How a mode runs the handler and writes the seen mark. `deliver` throws the handler's error;
 * it resolves `'duplicate'` when the seen mark shows that another delivery of the change won.
 */
export interface DeliveryStrategy<TSchema extends Document> {
  /** False: the caller writes the seen mark after `deliver` resolved `'handled'`. */
  readonly writesSeenMark: boolean;
  deliver(input: DeliveryInput<TSchema>): Promise<'handled' | 'duplicate'>;
}

/** Mode `idempotent-handler`: the handler runs; the seen mark is written afterwards by the caller. */
export class IdempotentHandlerDelivery<TSchema extends Document> implements DeliveryStrategy<TSchema> {
  readonly writesSeenMark = false;

  constructor(private readonly handler: ChangeHandler<TSchema, HandlerContext>) {}

  async deliver({ event, context }: DeliveryInput<TSchema>): Promise<'handled'> {
    await this.handler(event, context);
    return 'handled';
  }
}

/** Thrown inside the transaction to abort it when the seen mark already exists. */
class AlreadySeenInTransaction extends Error {
  override readonly name = 'AlreadySeenInTransaction';
}

/**
 * Mode `transactional`: one MongoDB transaction holds the seen mark and the handler's writes made
 * through `context.session`; they commit together or not at all. The mark is inserted first, so a
 * change another delivery already committed aborts before the handler runs. The driver's
 * `withTransaction` may call the handler more than once (transient transaction errors); only the
 * committed attempt's session writes take effect.
 */
export class TransactionalDelivery<TSchema extends Document> implements DeliveryStrategy<TSchema> {
  readonly writesSeenMark = true;

  constructor(
    private readonly handler: ChangeHandler<TSchema, TransactionalHandlerContext>,
    private readonly client: MongoClient,
    private readonly store: SeenStore,
    private readonly transactionOptions: TransactionOptions | undefined,
  ) {}

  async deliver({ event, context, record }: DeliveryInput<TSchema>): Promise<'handled' | 'duplicate'> {
    const session = this.client.startSession();
    try {
      await session.withTransaction(async (txnSession) => {
        const mark = await this.store.markSeen(context.changeId, record, txnSession);
        if (mark === 'already-seen') throw new AlreadySeenInTransaction(context.changeId);
        await this.handler(event, { ...context, session: txnSession, mongoClient: this.client });
      }, this.transactionOptions);
      return 'handled';
    } catch (error) {
      if (error instanceof AlreadySeenInTransaction) return 'duplicate';
      throw error;
    } finally {
      await session.endSession();
    }
  }
}

/**
 * Fails fast when the deployment cannot run transactions (a standalone mongod, or a server without
 * sessions): runs a read of the seen collection inside a transaction.
 */
export async function assertTransactionsSupported(client: MongoClient, store: SeenStore): Promise<void> {
  const session = client.startSession();
  try {
    await session.withTransaction(async (txnSession) => {
      await store.isSeen('mongo-kafka-relay:transaction-probe', txnSession);
    });
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
