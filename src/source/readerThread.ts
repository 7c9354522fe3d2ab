/**
 * The reader thread (a worker_threads entry): owns its own MongoDB client and the ChangeSource — the
 * relay's one change stream — converts every item to its Kafka record, and posts them to the pump's
 * thread in batches (itemBatch.ts). Reading and converting use the second core while the pump's
 * thread publishes.
 *
 * Invariants: items are posted in stream order, errors after every item read before them; the thread
 * reads only while items read and not yet done (reported back by the pump's thread) stay under
 * `limits.items`, and their record bytes under `limits.bytes` — the pump's own limits, so reading
 * pauses exactly where it would on one thread. After an error it reads nothing until told to resume.
 * The first message is always 'started' (the concrete start) or an error. With `awaitSnapshot`, it
 * then waits for the relay's word on a snapshot and reads that first (src/snapshot/snapshotReader.ts),
 * under the same limits, before the stream's first item.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { MongoClient } from 'mongodb';
import { createLogger } from '../app/logger.js';
import { ItemBatchBuilder } from '../pipeline/itemBatch.js';
import { ChangeConverter, publishBytes } from '../pipeline/readItem.js';
import { TopicRouter } from '../pipeline/topicRouter.js';
import { ChangeSource } from './changeSource.js';
import { SnapshotReader } from '../snapshot/snapshotReader.js';
import { SNAPSHOT_STAND_IN_TOKEN } from '../snapshot/snapshotRecord.js';
import {
  decodePipeline,
  decodePosition,
  decodeSnapshotPlan,
  encodeError,
  encodePosition,
  type FromReader,
  type ReaderThreadConfig,
  type ToReader,
} from './readerProtocol.js';

const port = parentPort;
if (!port) throw new Error('readerThread.ts runs as a worker thread (see threadedReader.ts)');
const config = workerData as ReaderThreadConfig;
const post = (message: FromReader, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

const logger = createLogger(config.logLevel).child({ thread: 'reader' });
/** How often the thread reports its heap (the main thread's metrics cannot see this isolate's). */
const HEAP_REPORT_MS = 2000;
const reportHeap = (): void => {
  const heap = getHeapStatistics();
  post({ type: 'heap', used: heap.used_heap_size, total: heap.total_heap_size });
};
reportHeap();
setInterval(reportHeap, HEAP_REPORT_MS).unref();
const client = new MongoClient(config.mongoUri, { appName: config.appName });
const source = new ChangeSource(client, decodePosition(config.start), {
  ...config.source,
  pipeline: decodePipeline(config.pipeline),
  logger,
  onRestart: (reason) => post({ type: 'restart', reason }),
  onOpenChange: (open) => post({ type: 'open', open }),
});
const router = new TopicRouter(config.topicTemplate, config.scope);
const converter = new ChangeConverter({
  router,
  record: config.record,
  operationTypes: config.operationTypes ? new Set(config.operationTypes) : null,
  deadLetterTopic: config.deadLetterTopic,
});
const builder = new ItemBatchBuilder(config.batch.items, config.batch.bytes);

let snapshot: SnapshotReader | null = null;
/** Resolved by the relay's word on a snapshot (only awaited with config.awaitSnapshot). */
let snapshotDecided: () => void = () => undefined;
const snapshotDecision = new Promise<void>((resolve) => (snapshotDecided = resolve));

let outstandingItems = 0;
let outstandingBytes = 0;
let closing = false;
let paused = false;
let wake: (() => void) | null = null;
let flushScheduled = false;

const wakeUp = (): void => {
  const w = wake;
  wake = null;
  w?.();
};

port.on('message', (m: ToReader) => {
  if (m.type === 'done') {
    outstandingItems -= m.items;
    outstandingBytes -= m.bytes;
  } else if (m.type === 'resume') {
    if (m.fromNow) source.restartFromNow();
    paused = false;
  } else if (m.type === 'snapshot') {
    if (m.plan) {
      const plan = decodeSnapshotPlan(m.plan);
      snapshot = new SnapshotReader(
        client,
        plan,
        {
          snapshotId: plan.id,
          clusterTime: plan.clusterTime,
          token: SNAPSHOT_STAND_IN_TOKEN,
          router,
          record: config.record,
        },
        {
          batchSize: config.snapshotBatchSize ?? 1000,
          logger,
          deadLetterTopic: config.deadLetterTopic,
          ...(config.source.onUnreadableEvent ? { onUnreadableEvent: config.source.onUnreadableEvent } : {}),
        },
      );
    }
    snapshotDecided();
  } else if (m.type === 'close') {
    closing = true;
    snapshotDecided();
    void snapshot?.close();
    void source.close();
  }
  wakeUp();
});

function flush(): void {
  if (builder.size === 0) return;
  const { message, transfer } = builder.take();
  post({ type: 'batch', batch: message }, transfer);
}

/**
 * A batch goes out when it is full, or when the loop is about to wait (for the server or for room):
 * items already buffered by the driver come without a macrotask in between, so a setImmediate fires
 * only once the buffered run is converted.
 */
function flushSoon(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    flush();
  });
}

const hasRoom = (): boolean =>
  outstandingItems < config.limits.items &&
  (outstandingItems === 0 || outstandingBytes < config.limits.bytes);

/** The snapshot's items first, then the stream's; null once closed. */
async function nextItem() {
  if (snapshot) {
    const copied = await snapshot.next();
    if (copied || closing) return copied;
    snapshot = null;
  }
  const item = await source.next();
  return item ? converter.convertFrom(source, item) : null;
}

async function readLoop(): Promise<void> {
  while (!closing) {
    if (paused || !hasRoom()) {
      flush();
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    let read;
    try {
      read = await nextItem();
    } catch (error) {
      flush();
      paused = true;
      post({ type: 'error', error: encodeError(error) });
      continue;
    }
    if (!read) break;
    builder.add(read);
    outstandingItems += 1;
    if (read.kind === 'publish') outstandingBytes += publishBytes(read);
    if (builder.isFull || builder.bytesUsed >= config.batch.bytes) flush();
    else flushSoon();
  }
}

/**
 * Resolve the stream's concrete start first and report it: the relay persists it before publishing
 * anything (a crash right after the first start must not restart at a later "now"). After an error
 * here nothing is read until the relay decides (it stops).
 */
async function start(): Promise<void> {
  try {
    const started = await source.startingPosition();
    post({ type: 'started', start: started ? encodePosition(started) : null });
  } catch (error) {
    paused = true;
    post({ type: 'error', error: encodeError(error) });
  }
}

try {
  await start();
  if (config.awaitSnapshot) await snapshotDecision;
  await readLoop();
} catch (error) {
  post({ type: 'error', error: encodeError(error) });
} finally {
  await source.close().catch(() => undefined);
  await client.close().catch(() => undefined);
  post({ type: 'closed' });
  port.close();
}
