/**
 * Chooses where changes are read and converted: on the reader thread (RELAY_READER_THREAD=true, the
 * default: the pump's thread only publishes) or on the pump's own thread. Both hand the pump the same
 * items in the same order under the same limits.
 */
import type { MongoClient } from 'mongodb';
import { ChangeSource, type ChangeSourceOptions, type StartPosition } from '../source/changeSource.js';
import { ThreadedReader } from '../source/threadedReader.js';
import type { StreamScope } from '../config/watchTargets.js';
import { LocalItemSource, type ItemSource } from './itemSource.js';
import type { RecordOptions } from './toRecord.js';
import { TopicRouter } from './topicRouter.js';

export interface ItemSourceSettings {
  readerThread: boolean;
  /** The reader thread opens its own client to this URI; the local source uses `client`. */
  mongoUri: string;
  client: MongoClient;
  start: StartPosition;
  source: ChangeSourceOptions;
  topicTemplate: string;
  scope: StreamScope;
  record: RecordOptions;
  operationTypes: ReadonlySet<string> | null;
  deadLetterTopic: string;
  /** RELAY_MAX_IN_FLIGHT and RELAY_MAX_IN_FLIGHT_BYTES: how far the reader thread may read ahead. */
  limits: { items: number; bytes: number };
  logLevel: string;
  /**
   * The relay decides on a snapshot after the start is known: the source then reads nothing after it
   * until beginReading() (src/snapshot/). Documents per snapshot read batch.
   */
  snapshot?: { batchSize: number };
  /** The reader thread's V8 heap, bytes (only with the reader thread). */
  onReaderHeap?: (heap: { used: number; total: number }) => void;
}

export function openItemSource(s: ItemSourceSettings): ItemSource {
  if (!s.readerThread) {
    return new LocalItemSource(
      new ChangeSource(s.client, s.start, s.source),
      {
        router: new TopicRouter(s.topicTemplate, s.scope),
        record: s.record,
        operationTypes: s.operationTypes,
        deadLetterTopic: s.deadLetterTopic,
      },
      s.snapshot
        ? {
            client: s.client,
            logger: s.source.logger,
            batchSize: s.snapshot.batchSize,
            ...(s.source.onUnreadableEvent ? { onUnreadableEvent: s.source.onUnreadableEvent } : {}),
          }
        : null,
    );
  }
  const { logger: _logger, onRestart, onOpenChange, ...source } = s.source;
  return new ThreadedReader({
    mongoUri: s.mongoUri,
    start: s.start,
    source,
    topicTemplate: s.topicTemplate,
    scope: s.scope,
    record: s.record,
    operationTypes: s.operationTypes,
    deadLetterTopic: s.deadLetterTopic,
    limits: s.limits,
    logLevel: s.logLevel,
    awaitSnapshot: s.snapshot !== undefined,
    snapshotBatchSize: s.snapshot?.batchSize,
    onRestart,
    onOpenChange,
    ...(s.onReaderHeap ? { onReaderHeap: s.onReaderHeap } : {}),
  });
}
