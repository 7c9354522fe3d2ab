/**
 * The source: one MongoDB change stream, read one item at a time. An item is either a change event or
 * a token-only tick (the server's post-batch resume token moved without an event), so the position
 * moves on quiet and filtered streams too.
 *
 * The driver resumes by itself after resumable errors. This module adds what the driver leaves to us:
 *  - a concrete start: "now" is resolved to the opened stream's first post-batch resume token (or the
 *    first event's cluster time) by startingPosition(), so it can be persisted before publishing;
 *  - reopening with `startAfter` after an invalidate, and after transient errors with backoff;
 *  - events over 16 MB: split by the server where it can (`$changeStreamSplitLargeEvent`) and
 *    reassembled here (src/source/splitEvent.ts); events it cannot deliver at all are found one at a
 *    time and skipped with a dead-letter item, or reported (src/source/unreadableEvent.ts);
 *  - reporting history loss and fatal errors to the caller;
 *  - close() ends a pending next() at once, even while MongoDB does not answer (graceful stop).
 *
 * The stream is read as raw BSON by default (src/source/rawChangeStream.ts): each event is decoded but
 * for its images, which the record writer writes from their bytes. An image the decoder then rejects
 * comes back through undecodable(), with the same outcome as an event the driver could not decode.
 *
 * Invariant: `position` is always a whole-event position (after a whole event or a post-batch token
 * taken between events), never inside a split event; every reopen starts from it.
 */
import type { ChangeStreamDocument, ChangeStreamOptions, Document, MongoClient, Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import { classifyStreamError, errorReason } from './errors.js';
import type { ResumeToken } from './resumeToken.js';
import { sameToken } from './resumeToken.js';
import { SPLIT_STAGE, detectSplitLargeEvent } from './serverFeatures.js';
import { FragmentAssembler, FragmentSequenceError, splitInfo } from './splitEvent.js';
import { RawChangeStream } from './rawChangeStream.js';
import { transactionOf } from './mongoTransaction.js';
import {
  UNREADABLE_REASON_TEXT,
  UnreadableEventError,
  classifyUnreadable,
  describeChange,
  identityOf,
  narrowRead,
  type ImageOptions,
  type UnreadableKind,
  type UnreadablePolicy,
} from './unreadableEvent.js';
import type { StreamScope } from '../config/watchTargets.js';

export type StartPosition = { startAfter: ResumeToken } | { startAtOperationTime: Timestamp } | { now: true };
/** A start the checkpoint can persist. */
export type ConcreteStart = Exclude<StartPosition, { now: true }>;

export type SourceItem =
  | {
      kind: 'change';
      event: ChangeStreamDocument;
      token: ResumeToken;
      readAt: number;
      /** Set when the event cannot be delivered: publish a dead-letter record naming it instead. */
      deadLetter?: { reason: UnreadableKind; detail: string };
    }
  | { kind: 'tick'; token: ResumeToken };

/** What the source uses of a change stream: the driver's ChangeStream, or RawChangeStream. */
export interface OpenedStream {
  tryNext(): Promise<Document | null>;
  readonly resumeToken: unknown;
  close(): Promise<void>;
}

export type StreamOpener = (
  client: MongoClient,
  scope: StreamScope,
  pipeline: Document[],
  options: ChangeStreamOptions,
) => OpenedStream;

/** The driver's ChangeStream: events decoded by the driver. */
export const openDriverStream: StreamOpener = (client, scope, pipeline, options) =>
  scope.level === 'collection'
    ? client.db(scope.db).collection(scope.coll).watch(pipeline, options)
    : scope.level === 'database'
      ? client.db(scope.db).watch(pipeline, options)
      : client.watch(pipeline, options);

/** The stream as raw BSON, images left as bytes (the default). */
export const openRawStream: StreamOpener = (client, scope, pipeline, options) =>
  new RawChangeStream(client, scope, pipeline, options);

export class HistoryLostError extends Error {
  constructor(
    readonly position: StartPosition,
    override readonly cause: unknown,
  ) {
    super(
      `the change stream cannot resume: its position is no longer in the oplog (${(cause as Error).message})`,
    );
    this.name = 'HistoryLostError';
  }
}

export class FatalStreamError extends Error {
  constructor(override readonly cause: unknown) {
    super((cause as Error).message);
    this.name = 'FatalStreamError';
  }
}

export { UnreadableEventError };

export interface ChangeSourceOptions extends ImageOptions {
  scope: StreamScope;
  pipeline: Document[];
  maxAwaitTimeMS: number;
  logger: Logger;
  /** What to do with an event the server cannot deliver (default: skip, with a dead-letter item). */
  onUnreadableEvent?: UnreadablePolicy;
  /** Use `$changeStreamSplitLargeEvent`: 'detect' (default) asks the server once. */
  splitLargeEvents?: boolean | 'detect';
  /** Called on each reopen after an error or invalidate. */
  onRestart?: (reason: string) => void;
  /** Called whenever the stream opens or closes, for readiness. */
  onOpenChange?: (open: boolean) => void;
  /** Called for each event skipped under RELAY_ON_UNREADABLE_EVENT=skip. */
  onUnreadable?: (kind: UnreadableKind) => void;
  backoff?: { initialMs: number; maxMs: number };
  /** How the stream is opened (default: openRawStream). The narrow read always uses the driver's. */
  openStream?: StreamOpener;
}

const CLOSED: unique symbol = Symbol('closed');

export class ChangeSource {
  private stream: OpenedStream | null = null;
  private position: StartPosition;
  private lastTick: ResumeToken | null = null;
  /**
   * The last event was part of a MongoDB transaction: the next empty batch is reported as a tick even
   * if the token did not move, since it is what tells that the transaction's events are all read.
   */
  private afterTransaction = false;
  private closed = false;
  private failures = 0;
  private split: boolean | null;
  private readonly assembler = new FragmentAssembler();
  /** Reading one event per batch, to find the event the server cannot deliver. */
  private careful = false;
  /** An item read while resolving the start, handed out by the next next(). */
  private pending: SourceItem | null = null;
  private readonly closedSignal: Promise<typeof CLOSED>;
  private signalClosed!: () => void;

  constructor(
    private readonly client: MongoClient,
    start: StartPosition,
    private readonly options: ChangeSourceOptions,
  ) {
    this.position = start;
    const split = options.splitLargeEvents ?? 'detect';
    this.split = split === 'detect' ? null : split;
    this.closedSignal = new Promise((resolve) => (this.signalClosed = () => resolve(CLOSED)));
  }

  /**
   * Where this stream starts, as a position that can be persisted. An explicit start is returned as
   * is; "now" opens the stream and takes its first post-batch resume token — or, if a change arrived
   * in the very first batch, that change's cluster time (resuming AT it, inclusive, loses nothing).
   * Returns null if closed first. Throws like next().
   */
  async startingPosition(): Promise<ConcreteStart | null> {
    while (!this.closed) {
      if (!('now' in this.position)) return this.position;
      const stream = this.stream ?? (await this.open());
      try {
        const event = await this.untilClosed(stream.tryNext());
        if (event === CLOSED) return null;
        this.failures = 0;
        if (event) {
          const clusterTime = (event as { clusterTime?: Timestamp }).clusterTime;
          if (!clusterTime) throw new FatalStreamError(new Error('a change event without clusterTime'));
          // The start is BEFORE this change (at its time, inclusive); the change itself is handed out next.
          const start = { startAtOperationTime: clusterTime };
          this.position = start;
          this.pending = this.accept(event);
          return start;
        }
        const token = stream.resumeToken as ResumeToken | undefined;
        if (token) {
          this.position = { startAfter: token };
          this.lastTick = token;
        }
      } catch (error) {
        if (this.closed) return null;
        await this.handleError(error);
      }
    }
    return null;
  }

  /** The next change or tick. Throws HistoryLostError, FatalStreamError or UnreadableEventError; retries everything else. */
  async next(): Promise<SourceItem | null> {
    while (!this.closed) {
      if (this.pending) {
        const item = this.pending;
        this.pending = null;
        return item;
      }
      const stream = this.stream ?? (await this.open());
      try {
        const event = await this.untilClosed(stream.tryNext());
        if (event === CLOSED) return null;
        this.failures = 0;
        if (event) {
          const item = this.accept(event);
          if (item) return item;
          continue;
        }
        if (this.assembler.assembling) continue; // a post-batch token inside a split event is no position
        if (this.careful) {
          // Caught up without meeting the undeliverable event again: back to full batches.
          this.careful = false;
          await this.closeStream();
          continue;
        }
        const token = stream.resumeToken as ResumeToken | undefined;
        if (token && (!sameToken(token, this.lastTick) || this.afterTransaction)) {
          this.afterTransaction = false;
          this.lastTick = token;
          this.position = { startAfter: token };
          return { kind: 'tick', token };
        }
      } catch (error) {
        if (this.closed) return null;
        const unreadable = classifyUnreadable(error, this.options);
        if (unreadable) {
          const item = await this.handleUnreadable(unreadable, error);
          if (item) return item;
          continue;
        }
        if (error instanceof FragmentSequenceError) {
          this.options.logger.warn({ err: error }, 'reopening from the last whole event');
          this.assembler.reset();
          await this.closeStream();
          continue;
        }
        await this.handleError(error);
      }
    }
    return null;
  }

  /** Ends a pending next() or startingPosition() at once; they return null. */
  async close(): Promise<void> {
    this.closed = true;
    this.signalClosed();
    await this.closeStream();
  }

  /**
   * `item`'s event holds an image the decoder rejects, found when its record was written (images are
   * decoded only then): the outcome of an event the driver could not decode. Under
   * RELAY_ON_UNREADABLE_EVENT=skip the item comes back with only the fields that name the change and
   * a dead-letter reason; under `fail` this throws UnreadableEventError.
   */
  undecodable(item: Extract<SourceItem, { kind: 'change' }>, error: unknown): SourceItem {
    const event = identityOf(item.event);
    if (this.options.onUnreadableEvent === 'fail')
      throw new UnreadableEventError('undecodable', event, error);
    const deadLetter = this.skipping('undecodable', event, item.token, error);
    return { ...item, event: event as ChangeStreamDocument, deadLetter };
  }

  /** RELAY_ON_UNREADABLE_EVENT=skip for `event` (named by its identity fields): logged, counted. */
  private skipping(
    kind: UnreadableKind,
    event: Document,
    token: ResumeToken,
    error: unknown,
  ): { reason: UnreadableKind; detail: string } {
    const detail = `${UNREADABLE_REASON_TEXT[kind]}: ${(error as Error).message}`;
    this.options.logger.error(
      { changeId: token._data, reason: kind, detail },
      `${describeChange(event)} cannot be read; RELAY_ON_UNREADABLE_EVENT=skip: a dead-letter record names it, the relay moves on`,
    );
    this.options.onUnreadable?.(kind);
    return { reason: kind, detail };
  }

  /** A change event, a fragment of one (null until the event is whole), as an item. */
  private accept(raw: Document): SourceItem | null {
    let event: Document = raw;
    let token = raw._id as ResumeToken;
    const info = splitInfo(raw);
    if (info) {
      const whole = this.assembler.add(raw, info);
      if (!whole) return null;
      ({ event, token } = whole);
    } else if (this.assembler.assembling) {
      throw new FragmentSequenceError('an ordinary event arrived before the last fragment');
    }
    this.position = { startAfter: token };
    this.lastTick = token;
    this.afterTransaction = transactionOf(event) !== undefined;
    if (event.operationType === 'invalidate') {
      // The server closes the cursor after an invalidate; `startAfter` (unlike resumeAfter) may start
      // right after it, so nothing that follows (e.g. a re-created collection) is missed.
      this.options.logger.warn({ changeId: token._data }, 'change stream invalidated; reopening after it');
      this.options.onRestart?.('invalidate');
      void this.closeStream();
    }
    return { kind: 'change', event: event as ChangeStreamDocument, token, readAt: performance.now() };
  }

  /**
   * The server failed the cursor on an event it cannot deliver. First pass: reopen reading one event
   * per batch from the last whole event, so the failure points at exactly one event. Second failure:
   * that event is the first after our position — name it (narrow read), then skip or fail.
   */
  private async handleUnreadable(kind: UnreadableKind, error: unknown): Promise<SourceItem | null> {
    this.assembler.reset();
    await this.closeStream();
    if (!this.careful) {
      this.careful = true;
      this.options.logger.warn(
        { reason: kind, err: error, position: describePosition(this.position) },
        'the change stream cannot deliver an event; reading one event at a time to find it',
      );
      return null;
    }
    this.careful = false;
    const event = await this.readNarrow().catch((narrowError: unknown) => {
      this.options.logger.warn(
        { err: narrowError },
        'could not read the undeliverable event even without its large fields',
      );
      return null;
    });
    if (this.options.onUnreadableEvent === 'fail' || !event)
      throw new UnreadableEventError(kind, event, error);
    const token = event._id as ResumeToken;
    const deadLetter = this.skipping(kind, event, token, error);
    this.position = { startAfter: token };
    this.lastTick = token;
    return { kind: 'change', event, token, readAt: performance.now(), deadLetter };
  }

  /** The first event after our position, without its large fields: enough to name it. */
  private async readNarrow(): Promise<ChangeStreamDocument | null> {
    const narrow = narrowRead(this.options);
    const stream = openDriverStream(
      this.client,
      this.options.scope,
      [...this.options.pipeline, ...narrow.tail],
      {
        ...this.watchOptions(narrow.images, 1),
        enableUtf8Validation: narrow.enableUtf8Validation,
      },
    );
    try {
      for (let attempt = 0; attempt < 30 && !this.closed; attempt++) {
        const event = await this.untilClosed(stream.tryNext());
        if (event === CLOSED) return null;
        if (event) return event as ChangeStreamDocument;
      }
      return null;
    } finally {
      await stream.close().catch(() => undefined);
    }
  }

  private async open(): Promise<OpenedStream> {
    if (this.split === null) {
      const support = await detectSplitLargeEvent(this.client, this.options.scope);
      this.split = support.supported;
      this.options.logger.info(
        { splitLargeEvents: support.supported, why: support.reason },
        support.supported
          ? 'events over 16 MB are split by MongoDB ($changeStreamSplitLargeEvent) and reassembled'
          : `events over 16 MB cannot be split by this MongoDB; RELAY_ON_UNREADABLE_EVENT=${this.options.onUnreadableEvent ?? 'skip'} applies to them`,
      );
    }
    const pipeline = this.split ? [...this.options.pipeline, SPLIT_STAGE] : this.options.pipeline;
    const stream = this.watch(pipeline, this.watchOptions(this.options, this.careful ? 1 : undefined));
    this.stream = stream;
    this.options.onOpenChange?.(true);
    this.options.logger.info(
      {
        scope: this.options.scope,
        position: describePosition(this.position),
        ...(this.careful ? { batchSize: 1 } : {}),
      },
      'change stream open',
    );
    return stream;
  }

  private watchOptions(images: ImageOptions, batchSize?: number): ChangeStreamOptions {
    const o: ChangeStreamOptions = { maxAwaitTimeMS: this.options.maxAwaitTimeMS };
    if (batchSize) o.batchSize = batchSize;
    if (images.fullDocument !== 'default') o.fullDocument = images.fullDocument;
    if (images.fullDocumentBeforeChange !== 'off')
      o.fullDocumentBeforeChange = images.fullDocumentBeforeChange;
    if ('startAfter' in this.position) o.startAfter = this.position.startAfter;
    if ('startAtOperationTime' in this.position) o.startAtOperationTime = this.position.startAtOperationTime;
    return o;
  }

  private watch(pipeline: Document[], options: ChangeStreamOptions): OpenedStream {
    return (this.options.openStream ?? openRawStream)(this.client, this.options.scope, pipeline, options);
  }

  private async handleError(error: unknown): Promise<void> {
    const kind = classifyStreamError(error);
    this.assembler.reset();
    await this.closeStream();
    if (kind === 'history-lost') throw new HistoryLostError(this.position, error);
    if (kind === 'fatal') throw new FatalStreamError(error);
    this.failures += 1;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 15000 };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures - 1, 16));
    const reason = errorReason(error);
    this.options.logger.warn(
      { err: error, reason, retryInMs: delay, position: describePosition(this.position) },
      'change stream failed; reopening from the last position read',
    );
    this.options.onRestart?.(reason);
    await this.pause(delay);
  }

  private async closeStream(): Promise<void> {
    const stream = this.stream;
    this.stream = null;
    if (!stream) return;
    this.options.onOpenChange?.(false);
    await stream.close().catch(() => undefined);
  }

  /** `work`, or CLOSED as soon as close() is called (the driver may not answer while MongoDB is away). */
  private untilClosed<T>(work: Promise<T>): Promise<T | typeof CLOSED> {
    return Promise.race([work, this.closedSignal]);
  }

  /** Backoff that ends at close(), leaving no timer behind. */
  private async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
      this.closedSignal,
    ]);
    clearTimeout(timer);
  }

  /** Reopen from "now", after an operator chose to skip lost history. */
  restartFromNow(): void {
    this.position = { now: true };
    this.lastTick = null;
    this.assembler.reset();
  }
}

export function describePosition(p: StartPosition): string {
  if ('startAfter' in p) return `after token ${p.startAfter._data}`;
  if ('startAtOperationTime' in p)
    return `at cluster time ${p.startAtOperationTime.high}.${p.startAtOperationTime.low}`;
  return 'now';
}
