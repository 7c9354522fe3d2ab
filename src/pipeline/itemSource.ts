/**
 * Where the pump gets its items: the reader thread (threadedReader.ts), or the change source read on
 * the pump's own thread (LocalItemSource). Either way items come in stream order, already converted.
 */
import type { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { ChangeSource, ConcreteStart } from '../source/changeSource.js';
import type { SnapshotPlan } from '../snapshot/snapshotPlan.js';
import { SnapshotReader } from '../snapshot/snapshotReader.js';
import { SNAPSHOT_STAND_IN_TOKEN } from '../snapshot/snapshotRecord.js';
import type { UnreadablePolicy } from '../source/unreadableEvent.js';
import { ChangeConverter, type ConverterOptions, type ReadItem } from './readItem.js';

export interface ItemSource {
  /**
   * Where the stream starts, "now" resolved to a position that can be persisted (null: closed first).
   * Throws what the change source throws when the stream cannot open.
   */
  startingPosition(): Promise<ConcreteStart | null>;
  /**
   * The next items in stream order (at least one), or null once closed. Throws what the change source
   * throws (history lost, fatal stream errors), after every item read before the error.
   */
  nextBatch(): Promise<ReadItem[] | null>;
  /**
   * `items` handed out earlier are done (acknowledged, or needing no acknowledgement) and `bytes` of
   * record data with them: a reader that reads ahead may read that much more.
   */
  done(items: number, bytes: number): void;
  close(): Promise<void>;
  /** Reopen from "now" after an operator chose to skip lost history (RELAY_ON_HISTORY_LOST). */
  restartFromNow(): void;
  /**
   * For a source opened to await it: read `snapshot` first (null: none), then the stream. Nothing
   * after the start is read before this call.
   */
  beginReading?(snapshot: SnapshotPlan | null): void;
}

/** What a local source needs to read a snapshot on the pump's thread. */
export interface LocalSnapshotOptions {
  client: MongoClient;
  logger: Logger;
  batchSize: number;
  /** RELAY_ON_UNREADABLE_EVENT, for documents the driver cannot decode. */
  onUnreadableEvent?: UnreadablePolicy;
}

/** The change source on this thread, one item per batch: nothing is read ahead of the pump. */
export class LocalItemSource implements ItemSource {
  private readonly converter: ChangeConverter;
  private snapshot: SnapshotReader | null = null;
  private decided: Promise<void> = Promise.resolve();
  private decide: (() => void) | null = null;

  constructor(
    private readonly source: ChangeSource,
    private readonly converterOptions: ConverterOptions,
    private readonly snapshotOptions: LocalSnapshotOptions | null = null,
  ) {
    this.converter = new ChangeConverter(converterOptions);
    if (snapshotOptions) this.decided = new Promise((resolve) => (this.decide = resolve));
  }

  beginReading(plan: SnapshotPlan | null): void {
    if (plan && this.snapshotOptions) {
      const { client, logger, batchSize, onUnreadableEvent } = this.snapshotOptions;
      const { router, record, deadLetterTopic } = this.converterOptions;
      this.snapshot = new SnapshotReader(
        client,
        plan,
        {
          snapshotId: plan.id,
          clusterTime: plan.clusterTime,
          token: SNAPSHOT_STAND_IN_TOKEN,
          router,
          record,
        },
        { batchSize, logger, deadLetterTopic, ...(onUnreadableEvent ? { onUnreadableEvent } : {}) },
      );
    }
    this.decide?.();
  }

  startingPosition(): Promise<ConcreteStart | null> {
    return this.source.startingPosition();
  }

  async nextBatch(): Promise<ReadItem[] | null> {
    await this.decided;
    if (this.snapshot) {
      const copied = await this.snapshot.next();
      if (copied) return [copied];
      this.snapshot = null;
    }
    const item = await this.source.next();
    return item ? [this.converter.convertFrom(this.source, item)] : null;
  }

  done(): void {}

  async close(): Promise<void> {
    this.decide?.();
    await this.snapshot?.close();
    await this.source.close();
  }

  restartFromNow(): void {
    this.source.restartFromNow();
  }
}
