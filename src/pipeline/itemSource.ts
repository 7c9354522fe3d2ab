/**
 * Where the pump gets its items: the reader thread (threadedReader.ts), or the change source read on
 * the pump's own thread (LocalItemSource). Either way items come in stream order, already converted.
 */
import type { ChangeSource, ConcreteStart } from '../source/changeSource.js';
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
}

/** The change source on this thread, one item per batch: nothing is read ahead of the pump. */
export class LocalItemSource implements ItemSource {
  private readonly converter: ChangeConverter;

  constructor(
    private readonly source: ChangeSource,
    converter: ConverterOptions,
  ) {
    this.converter = new ChangeConverter(converter);
  }

  startingPosition(): Promise<ConcreteStart | null> {
    return this.source.startingPosition();
  }

  async nextBatch(): Promise<ReadItem[] | null> {
    const item = await this.source.next();
    return item ? [this.converter.convert(item)] : null;
  }

  done(): void {}

  close(): Promise<void> {
    return this.source.close();
  }

  restartFromNow(): void {
    this.source.restartFromNow();
  }
}
