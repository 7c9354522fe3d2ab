/**
 * The oplog window of the watched deployment: the cluster times of the oldest and newest oplog
 * entries, read from `local.oplog.rs` (the first and last entry in natural order: two index-free
 * seeks at the ends of a capped collection, never a scan). With the checkpoint's position this gives
 * the headroom before history is lost, which is what the OplogHeadroomLow alert watches.
 *
 * Reading needs `find` on `local.oplog.rs`, which many relay users will not have, and is impossible
 * through mongos (each shard has its own oplog). Either is said ONCE in the log, with what to do;
 * the gauges then stay absent. This module only reads: it never affects the relay's flow.
 */
import { MongoServerError, type MongoClient, type Timestamp } from 'mongodb';
import type { Logger } from 'pino';

/** Cluster-time seconds of the oldest and newest oplog entries. */
export interface OplogBounds {
  oldest: number;
  newest: number;
}

export type OplogUnavailable = { reason: 'unauthorized' | 'mongos' | 'empty' | 'error'; message: string };

export type OplogReading = { ok: true; bounds: OplogBounds } | ({ ok: false } & OplogUnavailable);

const UNAUTHORIZED = 13;

export async function readOplogBounds(client: MongoClient): Promise<OplogReading> {
  try {
    const hello = await client.db('admin').command({ hello: 1 });
    if (hello.msg === 'isdbgrid') {
      return {
        ok: false,
        reason: 'mongos',
        message:
          'connected through mongos (a sharded cluster): every shard has its own oplog, which mongos does not serve; watch the oplog window of each shard with your MongoDB monitoring',
      };
    }
    const oplog = client.db('local').collection<{ ts: Timestamp }>('oplog.rs');
    const end = async (direction: 1 | -1): Promise<number | null> => {
      const [entry] = await oplog
        .find({}, { projection: { _id: 0, ts: 1 } })
        .sort({ $natural: direction })
        .limit(1)
        .toArray();
      return entry?.ts ? entry.ts.high : null;
    };
    const oldest = await end(1);
    const newest = await end(-1);
    if (oldest === null || newest === null)
      return { ok: false, reason: 'empty', message: 'local.oplog.rs has no entries' };
    return { ok: true, bounds: { oldest, newest } };
  } catch (error) {
    if (error instanceof MongoServerError && error.code === UNAUTHORIZED) {
      return {
        ok: false,
        reason: 'unauthorized',
        message:
          "the MongoDB user may not read local.oplog.rs: grant it `find` on {db: 'local', collection: 'oplog.rs'} (README: MongoDB privileges) to get the oplog window and headroom gauges",
      };
    }
    return { ok: false, reason: 'error', message: (error as Error).message };
  }
}

/**
 * Reads the oplog bounds every `intervalMs` and hands them (or null when unknown) to `publish`.
 * "Unauthorized" and "mongos" are permanent: logged once at warn, then reading stops.
 */
export class OplogWindowMonitor {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failingSince: string | null = null;

  constructor(
    private readonly read: () => Promise<OplogReading>,
    private readonly publish: (bounds: OplogBounds | null) => void,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One reading; exposed for tests. Returns whether reading goes on. */
  async tick(): Promise<boolean> {
    const reading = await this.read();
    if (this.stopped) return false;
    if (reading.ok) {
      if (this.failingSince !== null) this.logger.info('oplog window readable again');
      this.failingSince = null;
      this.publish(reading.bounds);
    } else {
      this.publish(null);
      const permanent = reading.reason === 'unauthorized' || reading.reason === 'mongos';
      if (this.failingSince !== reading.reason) {
        this.logger.warn(
          { reason: reading.reason },
          `oplog window unknown: ${reading.message}. The oplog window and headroom gauges stay absent${permanent ? '' : ' until it can be read'}`,
        );
      }
      this.failingSince = reading.reason;
      if (permanent) return false;
    }
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    return true;
  }
}

/** One line for `check-config`: the window, or why it is unknown (never a failure: it is optional). */
export function describeOplogReading(reading: OplogReading): string {
  if (!reading.ok) {
    return `unknown (${reading.reason}): ${reading.message}; without it the oplog headroom alert cannot fire`;
  }
  const { oldest, newest } = reading.bounds;
  return `${formatSeconds(newest - oldest)} (oldest entry ${new Date(oldest * 1000).toISOString()})`;
}

function formatSeconds(total: number): string {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`;
}
