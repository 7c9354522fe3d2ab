/**
 * The pump's side of the reader thread (readerThread.ts): an ItemSource whose items were read and
 * converted on another thread. It starts the thread, queues the batches it posts (in order), hands
 * them to the pump, returns "done" counts so the thread may read more (coalesced: one message per
 * turn of the event loop), forwards the stream's restarts and open/closed state, and rebuilds the
 * errors the thread reports so the caller sees the same classes as from a ChangeSource.
 *
 * If the thread dies, nextBatch() rejects with an error naming it: the relay exits and is restarted
 * from its checkpoint, as after any failure nobody knows how to handle.
 */
import { Worker } from 'node:worker_threads';
import type { Document } from 'mongodb';
import type { ChangeSourceOptions, ConcreteStart, StartPosition } from './changeSource.js';
import { decodeItemBatch } from '../pipeline/itemBatch.js';
import type { ItemSource } from '../pipeline/itemSource.js';
import type { ReadItem } from '../pipeline/readItem.js';
import type { RecordOptions } from '../pipeline/toRecord.js';
import type { StreamScope } from '../config/watchTargets.js';
import type { SnapshotPlan } from '../snapshot/snapshotPlan.js';
import {
  decodeConcreteStart,
  decodeError,
  encodePipeline,
  encodePosition,
  encodeSnapshotPlan,
  type FromReader,
  type ReaderThreadConfig,
  type ToReader,
} from './readerProtocol.js';

export interface ThreadedReaderOptions {
  mongoUri: string;
  start: StartPosition;
  source: ReaderThreadConfig['source'] & { pipeline: Document[] };
  topicTemplate: string;
  scope: StreamScope;
  record: RecordOptions;
  operationTypes: ReadonlySet<string> | null;
  deadLetterTopic: string;
  limits: { items: number; bytes: number };
  logLevel: string;
  /** Read nothing after the start until beginReading() (see ItemSource.beginReading). */
  awaitSnapshot?: boolean;
  snapshotBatchSize?: number;
  onRestart?: ChangeSourceOptions['onRestart'];
  onOpenChange?: ChangeSourceOptions['onOpenChange'];
  /** The reader thread's V8 heap, bytes (reported every few seconds). */
  onReaderHeap?: (heap: { used: number; total: number }) => void;
}

/** Batch messages: at most this many items, starting with a buffer of this size (it grows if needed). */
const BATCH_ITEMS = 1024;
const BATCH_BYTES = 1 << 20;
const CLOSE_TIMEOUT_MS = 10_000;
/**
 * The reader's V8 young generation (8 MB of new space instead of V8's default 32 MB): what it allocates
 * per change (the decoded event, its Extended JSON) dies young, so a small nursery costs little CPU and
 * keeps the thread's memory down.
 */
const READER_YOUNG_GENERATION_MB = 12;

export class ThreadedReader implements ItemSource {
  private readonly worker: Worker;
  private readonly queue: (ReadItem[] | Error)[] = [];
  private waiting: (() => void) | null = null;
  private closed = false;
  private failure: Error | null = null;
  private doneItems = 0;
  private doneBytes = 0;
  private doneScheduled = false;
  private readonly exited: Promise<void>;
  /** Settled by the thread's first message: its concrete start, or the error that prevented it. */
  private started: { resolve: (s: ConcreteStart | null) => void; reject: (e: Error) => void } | null;
  private readonly startPromise: Promise<ConcreteStart | null>;

  constructor(private readonly o: ThreadedReaderOptions) {
    let started!: NonNullable<ThreadedReader['started']>;
    this.startPromise = new Promise((resolve, reject) => (started = { resolve, reject }));
    this.startPromise.catch(() => undefined); // observed by startingPosition(); never unhandled
    this.started = started;
    const config: ReaderThreadConfig = {
      mongoUri: o.mongoUri,
      appName: 'mongo-kafka-relay',
      start: encodePosition(o.start),
      source: {
        scope: o.source.scope,
        fullDocument: o.source.fullDocument,
        fullDocumentBeforeChange: o.source.fullDocumentBeforeChange,
        maxAwaitTimeMS: o.source.maxAwaitTimeMS,
        backoff: o.source.backoff,
        onUnreadableEvent: o.source.onUnreadableEvent,
        splitLargeEvents: o.source.splitLargeEvents,
      },
      deadLetterTopic: o.deadLetterTopic,
      pipeline: encodePipeline(o.source.pipeline),
      topicTemplate: o.topicTemplate,
      scope: o.scope,
      record: o.record,
      operationTypes: o.operationTypes ? [...o.operationTypes] : null,
      limits: o.limits,
      batch: { items: BATCH_ITEMS, bytes: BATCH_BYTES },
      logLevel: o.logLevel,
      awaitSnapshot: o.awaitSnapshot ?? false,
      snapshotBatchSize: o.snapshotBatchSize ?? 1000,
    };
    this.worker = startReaderThread(config);
    this.worker.on('message', (m: FromReader) => this.onMessage(m));
    this.worker.on('error', (error) => this.fail(new Error(`the reader thread failed: ${error.message}`)));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        if (!this.closed) this.fail(new Error(`the reader thread exited unexpectedly (code ${code})`));
        resolve();
      }),
    );
  }

  /** Where the stream starts, as the source resolved it (see ChangeSource.startingPosition). */
  startingPosition(): Promise<ConcreteStart | null> {
    return this.startPromise;
  }

  async nextBatch(): Promise<ReadItem[] | null> {
    for (;;) {
      const next = this.queue.shift();
      if (next instanceof Error) throw next;
      if (next) return next;
      if (this.failure) throw this.failure;
      if (this.closed) return null;
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  done(items: number, bytes: number): void {
    this.doneItems += items;
    this.doneBytes += bytes;
    if (this.doneScheduled) return;
    this.doneScheduled = true;
    setImmediate(() => {
      this.doneScheduled = false;
      this.send({ type: 'done', items: this.doneItems, bytes: this.doneBytes });
      this.doneItems = 0;
      this.doneBytes = 0;
    });
  }

  beginReading(plan: SnapshotPlan | null): void {
    this.send({ type: 'snapshot', plan: plan ? encodeSnapshotPlan(plan) : null });
  }

  restartFromNow(): void {
    this.send({ type: 'resume', fromNow: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.settleStart(null);
    this.wake();
    this.send({ type: 'close' });
    const timer = setTimeout(() => void this.worker.terminate(), CLOSE_TIMEOUT_MS);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private onMessage(m: FromReader): void {
    switch (m.type) {
      case 'batch':
        this.queue.push(decodeItemBatch(m.batch));
        break;
      case 'started':
        this.settleStart(m.start ? decodeConcreteStart(m.start) : null);
        return;
      case 'error':
        if (this.started) {
          this.settleStart(decodeError(m.error));
          return;
        }
        this.queue.push(decodeError(m.error));
        break;
      case 'restart':
        this.o.onRestart?.(m.reason);
        return;
      case 'open':
        this.o.onOpenChange?.(m.open);
        return;
      case 'heap':
        this.o.onReaderHeap?.({ used: m.used, total: m.total });
        return;
      case 'closed':
        return;
    }
    this.wake();
  }

  private send(m: ToReader): void {
    if (!this.failure) this.worker.postMessage(m);
  }

  private settleStart(outcome: ConcreteStart | null | Error): void {
    const started = this.started;
    this.started = null;
    if (outcome instanceof Error) started?.reject(outcome);
    else started?.resolve(outcome);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.settleStart(error);
    this.o.onOpenChange?.(false);
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }
}

/**
 * Runs readerThread.js next to this file. From the TypeScript sources (tsx), Node does not give a
 * worker the parent's loader hooks (nodejs/node#47747), so the worker registers tsx itself first.
 */
function startReaderThread(workerData: ReaderThreadConfig): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './readerThread.ts' : './readerThread.js', import.meta.url);
  const resourceLimits = { maxYoungGenerationSizeMb: READER_YOUNG_GENERATION_MB };
  if (!fromSources) return new Worker(entry, { workerData, resourceLimits });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData, resourceLimits });
}
