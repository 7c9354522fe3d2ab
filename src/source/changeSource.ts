/**
 * The source: one MongoDB change stream, read one item at a time. An item is either a change event or
 * a token-only tick (the server's post-batch resume token moved without an event), so the position
 * moves on quiet and filtered streams too.
 *
 * The driver resumes by itself after resumable errors. This module adds what the driver leaves to us:
 * reopening with `startAfter` after an invalidate, reopening after transient errors with backoff, and
 * reporting history loss and fatal errors to the caller.
 */
import type {
  ChangeStream,
  ChangeStreamDocument,
  ChangeStreamOptions,
  Document,
  MongoClient,
  Timestamp,
} from 'mongodb';
import type { Logger } from 'pino';
import { classifyStreamError, errorReason } from './errors.js';
import type { ResumeToken } from './resumeToken.js';
import { sameToken } from './resumeToken.js';
import type { StreamScope } from './watchTargets.js';

export type StartPosition = { startAfter: ResumeToken } | { startAtOperationTime: Timestamp } | { now: true };

export type SourceItem =
  | { kind: 'change'; event: ChangeStreamDocument; token: ResumeToken; readAt: number }
  | { kind: 'tick'; token: ResumeToken };

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

export interface ChangeSourceOptions {
  scope: StreamScope;
  pipeline: Document[];
  fullDocument: 'default' | 'updateLookup' | 'whenAvailable' | 'required';
  fullDocumentBeforeChange: 'off' | 'whenAvailable' | 'required';
  maxAwaitTimeMS: number;
  logger: Logger;
  /** Called on each reopen after an error or invalidate. */
  onRestart?: (reason: string) => void;
  /** Called whenever the stream opens or closes, for readiness. */
  onOpenChange?: (open: boolean) => void;
  backoff?: { initialMs: number; maxMs: number };
}

export class ChangeSource {
  private stream: ChangeStream | null = null;
  private position: StartPosition;
  private lastTick: ResumeToken | null = null;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly client: MongoClient,
    start: StartPosition,
    private readonly options: ChangeSourceOptions,
  ) {
    this.position = start;
  }

  /** The next change or tick. Throws HistoryLostError or FatalStreamError; retries everything else. */
  async next(): Promise<SourceItem | null> {
    while (!this.closed) {
      const stream = this.stream ?? this.open();
      try {
        const event = await stream.tryNext();
        this.failures = 0;
        if (event) return this.changeItem(event);
        const token = stream.resumeToken as ResumeToken | undefined;
        if (token && !sameToken(token, this.lastTick)) {
          this.lastTick = token;
          this.position = { startAfter: token };
          return { kind: 'tick', token };
        }
      } catch (error) {
        if (this.closed) return null;
        await this.handleError(error);
      }
    }
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.closeStream();
  }

  private changeItem(event: ChangeStreamDocument): SourceItem {
    const token = event._id as ResumeToken;
    this.position = { startAfter: token };
    this.lastTick = token;
    if (event.operationType === 'invalidate') {
      // The server closes the cursor after an invalidate; `startAfter` (unlike resumeAfter) may start
      // right after it, so nothing that follows (e.g. a re-created collection) is missed.
      this.options.logger.warn({ changeId: token._data }, 'change stream invalidated; reopening after it');
      this.options.onRestart?.('invalidate');
      void this.closeStream();
    }
    return { kind: 'change', event, token, readAt: performance.now() };
  }

  private open(): ChangeStream {
    const { scope, pipeline } = this.options;
    const watchOptions: ChangeStreamOptions = { maxAwaitTimeMS: this.options.maxAwaitTimeMS };
    if (this.options.fullDocument !== 'default') watchOptions.fullDocument = this.options.fullDocument;
    if (this.options.fullDocumentBeforeChange !== 'off') {
      watchOptions.fullDocumentBeforeChange = this.options.fullDocumentBeforeChange;
    }
    if ('startAfter' in this.position) watchOptions.startAfter = this.position.startAfter;
    if ('startAtOperationTime' in this.position)
      watchOptions.startAtOperationTime = this.position.startAtOperationTime;
    const stream =
      scope.level === 'collection'
        ? this.client.db(scope.db).collection(scope.coll).watch(pipeline, watchOptions)
        : scope.level === 'database'
          ? this.client.db(scope.db).watch(pipeline, watchOptions)
          : this.client.watch(pipeline, watchOptions);
    this.stream = stream;
    this.options.onOpenChange?.(true);
    this.options.logger.info({ scope, position: describePosition(this.position) }, 'change stream open');
    return stream;
  }

  private async handleError(error: unknown): Promise<void> {
    const kind = classifyStreamError(error);
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
    await sleep(delay);
  }

  private async closeStream(): Promise<void> {
    const stream = this.stream;
    this.stream = null;
    if (!stream) return;
    this.options.onOpenChange?.(false);
    await stream.close().catch(() => undefined);
  }

  /** Reopen from "now", after an operator chose to skip lost history. */
  restartFromNow(): void {
    this.position = { now: true };
    this.lastTick = null;
  }
}

export function describePosition(p: StartPosition): string {
  if ('startAfter' in p) return `after token ${p.startAfter._data}`;
  if ('startAtOperationTime' in p)
    return `at cluster time ${p.startAtOperationTime.high}.${p.startAtOperationTime.low}`;
  return 'now';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
