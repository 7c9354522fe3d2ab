/**
 * Is the checkpoint store on the deployment the relay watches? Then its own checkpoint and lease
 * writes would come back through the change stream (under "*" each one causing the next), and the
 * stream must exclude them by namespace.
 *
 * Decided by looking, not by comparing connection strings: another user, another host alias or
 * other options name the same deployment with another string. After acquiring the lease, the relay
 * reads its own lease document — unique owner ID, written with w:majority — through the SOURCE
 * connection, from the primary. Found: the same deployment. Not found: another one. If the read
 * fails (e.g. no privilege on that namespace), the namespace is excluded anyway: excluding the
 * relay's own bookkeeping namespace of another deployment costs nothing, relaying our own writes does.
 */
import type { MongoClient } from 'mongodb';
import type { Logger } from 'pino';

export interface StoreNamespace {
  database: string;
  collection: string;
  checkpointId: string;
}

export async function storeOnWatchedDeployment(
  source: MongoClient,
  store: StoreNamespace,
  leaseOwner: string,
  logger: Logger,
  timeoutMs: number,
): Promise<boolean> {
  try {
    const mine = await source
      .db(store.database)
      .collection<{ _id: string }>(store.collection)
      .findOne(
        { _id: store.checkpointId, 'lease.owner': leaseOwner },
        { readPreference: 'primary', projection: { _id: 1 }, maxTimeMS: timeoutMs },
      );
    return mine !== null;
  } catch (error) {
    logger.warn(
      { err: error, checkpointDb: store.database, checkpointCollection: store.collection },
      'cannot tell whether the checkpoint store is on the watched deployment; excluding its namespace from the stream anyway',
    );
    return true;
  }
}
