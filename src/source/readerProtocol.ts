/**
 * The messages between the pump's thread and the reader thread, and how the values that cross the
 * boundary are encoded: structured cloning drops class identity (BSON Timestamps, error classes), so
 * start positions, the aggregation pipeline and errors travel in explicit forms and are rebuilt on
 * the other side. An error class this module does not know arrives as a plain Error with its name and
 * message (add it here if the pump's caller must tell it apart).
 */
import { BSON, Timestamp, type Document } from 'mongodb';
import type { ItemBatchMessage } from '../pipeline/itemBatch.js';
import type { RecordOptions } from '../pipeline/toRecord.js';
import {
  FatalStreamError,
  HistoryLostError,
  UnreadableEventError,
  type ChangeSourceOptions,
  type ConcreteStart,
  type StartPosition,
} from './changeSource.js';
import type { UnreadableKind } from './unreadableEvent.js';
import type { SnapshotPlan } from '../snapshot/snapshotPlan.js';
import type { StreamScope } from '../config/watchTargets.js';

/** What the reader thread is started with (its workerData). */
export interface ReaderThreadConfig {
  mongoUri: string;
  appName: string;
  start: EncodedPosition;
  source: Pick<
    ChangeSourceOptions,
    | 'scope'
    | 'fullDocument'
    | 'fullDocumentBeforeChange'
    | 'maxAwaitTimeMS'
    | 'backoff'
    | 'onUnreadableEvent'
    | 'splitLargeEvents'
  >;
  /** Where events the source could not read are named (RELAY_DEAD_LETTER_TOPIC). */
  deadLetterTopic: string;
  /** The aggregation pipeline as canonical Extended JSON (it may hold BSON values). */
  pipeline: string;
  topicTemplate: string;
  scope: StreamScope;
  record: RecordOptions;
  /** null: publish every operation type. */
  operationTypes: string[] | null;
  /** Most items read and not yet done, and their record bytes (at least one item is always read). */
  limits: { items: number; bytes: number };
  /** Items per batch message, and the buffer size a batch starts with. */
  batch: { items: number; bytes: number };
  logLevel: string;
  /**
   * Read nothing after the start until told whether a snapshot comes first ({type: 'snapshot'}): the
   * relay decides once the start is known (src/snapshot/).
   */
  awaitSnapshot?: boolean;
  /** Documents per batch of a snapshot's reads. */
  snapshotBatchSize?: number;
}

export type ToReader =
  | { type: 'done'; items: number; bytes: number }
  | { type: 'resume'; fromNow: boolean }
  | { type: 'snapshot'; plan: EncodedSnapshotPlan | null }
  | { type: 'close' };

/** A snapshot plan across the thread boundary (its cluster time as numbers). */
export type EncodedSnapshotPlan = Omit<SnapshotPlan, 'clusterTime'> & {
  clusterTime: { t: number; i: number };
};

export const encodeSnapshotPlan = (plan: SnapshotPlan): EncodedSnapshotPlan => ({
  ...plan,
  collections: plan.collections.map((c) => ({ ...c })),
  cursor: { ...plan.cursor },
  clusterTime: { t: plan.clusterTime.high, i: plan.clusterTime.low },
});

export const decodeSnapshotPlan = (plan: EncodedSnapshotPlan): SnapshotPlan => ({
  ...plan,
  clusterTime: new Timestamp(plan.clusterTime),
});

export type FromReader =
  | { type: 'batch'; batch: ItemBatchMessage }
  /** The stream's concrete start (null: closed before it was known); sent once, before any batch. */
  | { type: 'started'; start: EncodedPosition | null }
  | { type: 'error'; error: EncodedError }
  | { type: 'restart'; reason: string }
  | { type: 'open'; open: boolean }
  /** The reader thread's V8 heap (bytes), every few seconds: its own isolate, not in the process's heap figures. */
  | { type: 'heap'; used: number; total: number }
  | { type: 'closed' };

export type EncodedPosition =
  { startAfter: string } | { startAtOperationTime: { t: number; i: number } } | { now: true };

export function encodePosition(p: StartPosition): EncodedPosition {
  if ('startAfter' in p) return { startAfter: p.startAfter._data };
  if ('startAtOperationTime' in p)
    return { startAtOperationTime: { t: p.startAtOperationTime.high, i: p.startAtOperationTime.low } };
  return { now: true };
}

export function decodeConcreteStart(p: EncodedPosition): ConcreteStart {
  const start = decodePosition(p);
  if ('now' in start) throw new Error('the reader thread reported "now" as its concrete start');
  return start;
}

export function decodePosition(p: EncodedPosition): StartPosition {
  if ('startAfter' in p) return { startAfter: { _data: p.startAfter } };
  if ('startAtOperationTime' in p) return { startAtOperationTime: new Timestamp(p.startAtOperationTime) };
  return { now: true };
}

export const encodePipeline = (pipeline: Document[]): string =>
  BSON.EJSON.stringify(pipeline, { relaxed: false });
export const decodePipeline = (text: string): Document[] =>
  BSON.EJSON.parse(text, { relaxed: false }) as Document[];

interface EncodedCause {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  codeName?: unknown;
}

export type EncodedError =
  | { kind: 'history-lost'; position: EncodedPosition; cause: EncodedCause }
  | { kind: 'fatal'; cause: EncodedCause }
  | { kind: 'unreadable'; reason: UnreadableKind; event: string | null; cause: EncodedCause }
  | { kind: 'other'; cause: EncodedCause };

function encodeCause(error: unknown): EncodedCause {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const e = error as Error & { code?: unknown; codeName?: unknown };
  return { name: e.name, message: e.message, stack: e.stack, code: e.code, codeName: e.codeName };
}

function decodeCause(c: EncodedCause): Error {
  const error = new Error(c.message) as Error & { code?: unknown; codeName?: unknown };
  error.name = c.name;
  if (c.stack) error.stack = c.stack;
  if (c.code !== undefined) error.code = c.code;
  if (c.codeName !== undefined) error.codeName = c.codeName;
  return error;
}

export function encodeError(error: unknown): EncodedError {
  if (error instanceof HistoryLostError)
    return {
      kind: 'history-lost',
      position: encodePosition(error.position),
      cause: encodeCause(error.cause),
    };
  if (error instanceof FatalStreamError) return { kind: 'fatal', cause: encodeCause(error.cause) };
  if (error instanceof UnreadableEventError)
    return {
      kind: 'unreadable',
      reason: error.kind,
      event: error.event ? BSON.EJSON.stringify(error.event, { relaxed: false }) : null,
      cause: encodeCause(error.cause),
    };
  return { kind: 'other', cause: encodeCause(error) };
}

export function decodeError(e: EncodedError): Error {
  if (e.kind === 'history-lost')
    return new HistoryLostError(decodePosition(e.position), decodeCause(e.cause));
  if (e.kind === 'fatal') return new FatalStreamError(decodeCause(e.cause));
  if (e.kind === 'unreadable')
    return new UnreadableEventError(
      e.reason,
      e.event === null ? null : (BSON.EJSON.parse(e.event, { relaxed: false }) as Document),
      decodeCause(e.cause),
    );
  return decodeCause(e.cause);
}
