/**
 * A change stream read as raw BSON: the `aggregate` with `$changeStream` and its `getMore`s, run by the
 * driver as commands in one session, with the batches' events left as bytes (`fieldsAsRaw`). Each event
 * is decoded when it is taken, its images kept raw (src/source/rawEvent.ts), so the record writer
 * writes them from their bytes and no JS object tree is built for them.
 *
 * It offers what ChangeSource uses of the driver's ChangeStream: tryNext() (an event, or null after an
 * empty batch), resumeToken (the last event's, or the batch's post-batch resume token once the batch
 * is used up: the driver's rule) and close(). What the driver's ChangeStream adds on top (resuming by
 * itself once after a resumable error) ChangeSource does already: every error ends this stream, and
 * ChangeSource reopens from its last whole-event position, after a short backoff.
 *
 * Commands go to the primary (the `getMore` must reach the server holding the cursor); an election
 * fails the next `getMore` (a resumable error) and the stream is reopened on the new primary.
 */
import {
  MongoChangeStreamError,
  type ChangeStreamOptions,
  type ClientSession,
  type Document,
  type Long,
  type MongoClient,
} from 'mongodb';
import type { StreamScope } from '../config/watchTargets.js';
import { CursorClosedByServerError } from './errors.js';
import { decodeChangeEvent } from './rawEvent.js';
import { transactionOf } from './mongoTransaction.js';
import type { ResumeToken } from './resumeToken.js';

/** The batches stay bytes; everything else in the reply is decoded (cursor ids as Longs). */
const REPLY_DECODING = { fieldsAsRaw: { firstBatch: true, nextBatch: true }, promoteLongs: false } as const;
/** How long close() waits for killCursors (best effort: the server times idle cursors out anyway). */
const KILL_CURSORS_WAIT_MS = 2000;

interface CursorReply {
  cursor: {
    id: Long;
    ns: string;
    firstBatch?: Uint8Array[];
    nextBatch?: Uint8Array[];
    postBatchResumeToken?: ResumeToken;
  };
}

const EMPTY: Uint8Array = new Uint8Array(0);
/**
 * The await of a getMore after a batch that ended inside a MongoDB transaction: the rest of the
 * transaction, if any, is already in the oplog (its events become visible together, at commit), so an
 * empty answer comes back at once instead of after maxAwaitTimeMS and tells the relay the
 * transaction is complete (exactly-once then commits its Kafka transaction).
 */
export const TRANSACTION_PROBE_MS = 1;

export class RawChangeStream {
  /** The driver's ChangeStream's rule: the last event's token, or the post-batch token after a batch. */
  resumeToken: ResumeToken | undefined;
  private session: ClientSession | null = null;
  private cursorId: Long | null = null;
  /** The getMore's `collection`: the cursor's namespace without the database. */
  private cursorCollection = '';
  private batch: Uint8Array[] = [];
  private at = 0;
  private postBatchToken: ResumeToken | undefined;
  private closed = false;
  /** The last event handed out was part of a MongoDB transaction. */
  private inTransaction = false;

  constructor(
    private readonly client: MongoClient,
    private readonly scope: StreamScope,
    private readonly pipeline: Document[],
    private readonly options: ChangeStreamOptions,
  ) {}

  private get dbName(): string {
    return this.scope.level === 'deployment' ? 'admin' : this.scope.db;
  }

  /** The next event, decoded but for its images; null when a batch came back empty. */
  async tryNext(): Promise<Document | null> {
    if (this.closed) throw new MongoChangeStreamError('the change stream is closed');
    if (this.at >= this.batch.length) {
      if (this.cursorId === null) await this.open();
      else await this.getMore();
    }
    if (this.at < this.batch.length) {
      const bytes = this.batch[this.at]!;
      // The batch holds the reply's buffer: let each event's bytes go once taken.
      this.batch[this.at++] = EMPTY;
      const event = decodeChangeEvent(bytes);
      if (event._id === undefined || event._id === null)
        throw new MongoChangeStreamError(
          'a change event without a resume token (_id): the pipeline must keep _id',
        );
      this.inTransaction = transactionOf(event) !== undefined;
      const whole = this.at === this.batch.length;
      this.resumeToken = whole && this.postBatchToken ? this.postBatchToken : (event._id as ResumeToken);
      return event;
    }
    if (this.postBatchToken) this.resumeToken = this.postBatchToken;
    return null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.batch = [];
    const session = this.session;
    const id = this.cursorId;
    if (session && id && !id.isZero()) await this.killCursor(session, id);
    await session?.endSession().catch(() => undefined);
  }

  private async open(): Promise<void> {
    const o = this.options;
    const stage: Document = {};
    if (o.fullDocument) stage.fullDocument = o.fullDocument;
    if (o.fullDocumentBeforeChange) stage.fullDocumentBeforeChange = o.fullDocumentBeforeChange;
    if (o.startAfter) stage.startAfter = o.startAfter;
    if (o.resumeAfter) stage.resumeAfter = o.resumeAfter;
    if (o.startAtOperationTime) stage.startAtOperationTime = o.startAtOperationTime;
    if (this.scope.level === 'deployment') stage.allChangesForCluster = true;
    const command: Document = {
      aggregate: this.scope.level === 'collection' ? this.scope.coll : 1,
      pipeline: [{ $changeStream: stage }, ...this.pipeline],
      cursor: o.batchSize ? { batchSize: o.batchSize } : {},
    };
    // getMore must run in the session that created the cursor; causal consistency would add an
    // afterClusterTime read concern, which a change stream needs no more than the driver sends.
    const session = this.client.startSession({ causalConsistency: false });
    this.session = session;
    const reply = (await this.client
      .db(this.dbName)
      .command(command, { ...REPLY_DECODING, session })) as CursorReply;
    const { cursor } = reply;
    this.cursorId = cursor.id;
    this.cursorCollection = cursor.ns.slice(cursor.ns.indexOf('.') + 1);
    this.take(cursor.firstBatch, cursor.postBatchResumeToken);
    if (this.closed && !cursor.id.isZero()) await this.killCursor(session, cursor.id);
  }

  private async getMore(): Promise<void> {
    const id = this.cursorId!;
    if (id.isZero()) throw new CursorClosedByServerError('the server closed the change stream cursor');
    const command: Document = { getMore: id, collection: this.cursorCollection };
    if (this.inTransaction) command.maxTimeMS = TRANSACTION_PROBE_MS;
    else if (this.options.maxAwaitTimeMS !== undefined) command.maxTimeMS = this.options.maxAwaitTimeMS;
    if (this.options.batchSize) command.batchSize = this.options.batchSize;
    const reply = (await this.client
      .db(this.dbName)
      .command(command, { ...REPLY_DECODING, session: this.session! })) as CursorReply;
    this.cursorId = reply.cursor.id;
    this.take(reply.cursor.nextBatch, reply.cursor.postBatchResumeToken);
  }

  private take(batch: Uint8Array[] | undefined, postBatchToken: ResumeToken | undefined): void {
    this.batch = batch ?? [];
    this.at = 0;
    if (this.batch.length === 0) this.inTransaction = false;
    if (postBatchToken) this.postBatchToken = postBatchToken;
  }

  private async killCursor(session: ClientSession, id: Long): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const kill = this.client
      .db(this.dbName)
      .command({ killCursors: this.cursorCollection, cursors: [id] }, { session })
      .catch(() => undefined);
    await Promise.race([
      kill,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, KILL_CURSORS_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }
}
