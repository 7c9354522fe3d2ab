/**
 * (a) Raw change-stream read rate with the mongodb driver alone: a backlog of N inserts is written after a
 * start position is taken, then a plain `collection.watch()` opened `startAfter` that position reads them
 * all; the rate is N / (time from opening the stream to the N-th event). Options as the relay's stream
 * (fullDocument: updateLookup, maxAwaitTimeMS 1000, driver-default batch sizes). The backlog is read twice
 * from the same start: the first pass warms the driver up, the second is the figure (coldRate: the first).
 *
 * Also: the round trip of a checkpoint-shaped write (a fenced updateOne), which bounds strict mode.
 */
import type { ChangeStreamDocument, Collection, MongoClient } from 'mongodb';
import {
  cpuUs,
  benchCollection,
  type BenchDoc,
  currentToken,
  distribution,
  insertBacklog,
  round,
  uniqueName,
  type Distribution,
} from './support.js';

export interface RawReadResult {
  size: number;
  n: number;
  seconds: number;
  rate: number;
  /** The first (untimed for the figure) pass over the same backlog: cold JIT. */
  coldRate: number;
  /** CPU time of this (the reading) process per event, µs: 1e6 / this is the single-thread ceiling. */
  cpuUsPerEvent: number;
  /** Rate at which the backlog was written (insertMany of 500), for context. */
  writeRate: number;
}

export async function rawRead(
  client: MongoClient,
  size: number,
  n: number,
): Promise<{ result: RawReadResult; events: ChangeStreamDocument[] }> {
  const coll = benchCollection(client, uniqueName(`raw_${size}`));
  const token = await currentToken(coll);
  const writeSeconds = await insertBacklog(coll, size, n);
  // Pass 1 warms the driver (JIT, connection); pass 2, over the same backlog from the same start, is timed.
  const cold = await readAll(coll, token, n);
  const warm = await readAll(coll, token, n);
  const events = warm.events;
  const seconds = warm.seconds;
  return {
    result: {
      size,
      n,
      seconds: round(seconds, 3),
      rate: round(n / seconds, 0),
      coldRate: round(n / cold.seconds, 0),
      cpuUsPerEvent: round(warm.cpuUsPerEvent, 1),
      writeRate: round(n / writeSeconds, 0),
    },
    events,
  };
}

async function readAll(
  coll: Collection<BenchDoc>,
  token: { _data: string },
  n: number,
): Promise<{ events: ChangeStreamDocument[]; seconds: number; cpuUsPerEvent: number }> {
  const events: ChangeStreamDocument[] = [];
  const t0 = performance.now();
  const c0 = cpuUs();
  const stream = coll.watch([], { startAfter: token, fullDocument: 'updateLookup', maxAwaitTimeMS: 1000 });
  try {
    while (events.length < n) events.push(await stream.next());
  } finally {
    await stream.close();
  }
  return { events, seconds: (performance.now() - t0) / 1000, cpuUsPerEvent: (cpuUs() - c0) / n };
}

/**
 * Sequential fenced updateOne calls shaped like the relay's checkpoint write ($set token/time/identity,
 * $inc counts, filter on _id + lease owner): the MongoDB part of strict mode's per-event cost.
 */
export async function mongoWriteRoundTrip(client: MongoClient, count = 900): Promise<Distribution> {
  const coll = client.db('bench').collection<{ _id: string; lease: { owner: string } }>(uniqueName('rtt'));
  await coll.insertOne({ _id: 'cp', lease: { owner: 'bench' } });
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await coll.updateOne(
      { _id: 'cp', 'lease.owner': 'bench' },
      {
        $set: {
          token: { _data: `82${i.toString(16).padStart(24, '0')}` },
          writtenAt: new Date(),
          fingerprint: 'f',
          watch: ['bench.x'],
        },
        $inc: { 'counts.published': 1, 'counts.filtered': 0, 'counts.deadLettered': 0 },
      },
    );
    if (i >= 100) times.push(performance.now() - t0); // skip the warm-up
  }
  await coll.drop().catch(() => undefined);
  const d = distribution(times);
  return {
    count: d.count,
    p50: round(d.p50, 3),
    p99: round(d.p99, 3),
    max: round(d.max, 3),
    mean: round(d.mean, 3),
  };
}
