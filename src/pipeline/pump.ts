/**
 * The relay pipeline: items (already converted) -> sink -> ack window -> checkpointer.
 *
 * Admission rule, the one back-pressure point: the next item is admitted only while
 *   events in flight + acknowledged-but-unpersisted events < min(RELAY_MAX_IN_FLIGHT, checkpointer bound)
 * and, unless nothing is in flight, record bytes in flight < RELAY_MAX_IN_FLIGHT_BYTES. So memory stays
 * bounded during a Kafka outage, a crash re-publishes at most that many events, and in serial mode
 * (bound 1) each event is persisted before the next one is sent. Publishing is otherwise pipelined:
 * records go to the sink as they are admitted, and the sink keeps Kafka's per-partition order.
 * A delete's tombstone (RELAY_KEY=document) goes to the sink right after its delete, in the same slot:
 * the event counts as acknowledged only once Kafka acknowledged both.
 */
import type { Logger } from 'pino';
import type { KafkaSink, PublishOutcome } from '../sink/kafkaSink.js';
import { ShutdownError } from '../sink/kafkaSink.js';
import type { Checkpointer } from '../checkpoint/checkpointer.js';
import { LeaseNotHeldError } from '../checkpoint/leaseKeeper.js';
import type { RelayMetrics } from '../metrics/relayMetrics.js';
import { clusterTimeOfToken } from '../source/resumeToken.js';
import { Signal } from '../util/async.js';
import { AckWindow, type AckSlot, type Position } from './ackWindow.js';
import type { ItemSource } from './itemSource.js';
import { publishBytes, type ReadItem } from './readItem.js';
import type { OutboundRecord } from './toRecord.js';

export interface PumpOptions {
  source: ItemSource;
  sink: Pick<KafkaSink, 'publish'> & {
    /** Exactly-once: a released stream position with no event (see TransactionalKafkaSink). */
    offerPosition?: (position: Position) => void;
    /**
     * Exactly-once: an item that publishes nothing (a filtered change, a tick) was admitted; its
     * position tells whether the MongoDB transaction of the records before it has ended.
     */
    passed?: (position: Position) => void;
    /** Exactly-once: nothing more is admitted until something is acknowledged. */
    full?: () => void;
  };
  checkpointer: Pick<Checkpointer, 'record' | 'changed' | 'unpersistedEvents' | 'bound'>;
  maxInFlight: number;
  maxInFlightBytes: number;
  metrics: RelayMetrics;
  logger: Logger;
  /** False once the lease is lost: nothing more may be published. */
  mayPublish: () => boolean;
  onFatal: (error: unknown) => void;
}

export class Pump {
  readonly window = new AckWindow();
  private readonly acked = new Signal();
  private stopping = false;
  private inFlightBytes = 0;
  /**
   * Acknowledged events by namespace and operation type, added to the counter once per burst of
   * acknowledgements (one produce response acknowledges many records at once): the metric library
   * hashes labels on every call, which per event is a visible share of the publishing thread.
   */
  private readonly ackedByLabels = new Map<
    string,
    { labels: { ns: string; operation_type: string }; n: number }
  >();
  private metricsFlushScheduled = false;
  private watchingWrites = false;

  constructor(private readonly o: PumpOptions) {}

  /** Read and publish until stop() or an error from the source (history lost, fatal). */
  async run(): Promise<void> {
    while (!this.stopping) {
      await this.waitForRoom();
      if (this.stopping) break;
      const batch = await this.o.source.nextBatch();
      if (!batch) break;
      for (let i = 0; i < batch.length; i++) {
        if (i > 0 && !this.hasRoom()) await this.waitForRoom();
        // Items not admitted were never published: after a restart they are read again.
        if (this.stopping) return;
        this.admit(batch[i]!);
      }
      this.o.metrics.inFlight.set(this.window.inFlight);
    }
  }

  /** Stop reading; what is in flight continues until drained(). */
  stop(): void {
    this.stopping = true;
    this.acked.notify();
  }

  /** Resolves when every admitted event is acknowledged. */
  async drained(): Promise<void> {
    while (this.window.inFlight > 0) await this.acked.wait();
  }

  private hasRoom(): boolean {
    const cp = this.o.checkpointer;
    const inFlight = this.window.inFlight;
    if (inFlight + cp.unpersistedEvents >= Math.min(this.o.maxInFlight, cp.bound)) return false;
    return inFlight === 0 || this.inFlightBytes < this.o.maxInFlightBytes;
  }

  /** Room comes back with an acknowledgement, or with a checkpoint write when events await theirs. */
  /**
   * No room, and only an acknowledgement can make some (not a checkpoint write): what exactly-once's
   * sink must hear while it holds a MongoDB transaction open (see full()).
   */
  private blockedByInFlight(): boolean {
    const inFlight = this.window.inFlight;
    if (inFlight >= Math.min(this.o.maxInFlight, this.o.checkpointer.bound)) return true;
    return inFlight > 0 && this.inFlightBytes >= this.o.maxInFlightBytes;
  }

  private async waitForRoom(): Promise<void> {
    while (!this.stopping && !this.hasRoom()) {
      if (this.blockedByInFlight()) this.o.sink.full?.();
      if (!this.watchingWrites && this.o.checkpointer.unpersistedEvents > 0) {
        this.watchingWrites = true;
        void this.o.checkpointer.changed().then(() => {
          this.watchingWrites = false;
          this.acked.notify();
        });
      }
      await this.acked.wait();
    }
  }

  private admit(item: ReadItem): void {
    if (item.kind === 'tick') {
      const tokenTime = clusterTimeOfToken(item.position.token);
      if (tokenTime) this.o.metrics.observeClusterTime(tokenTime.high);
      this.o.sink.passed?.(item.position);
      this.window.admitDone(item.position, 'tick');
      this.o.source.done(1, 0);
      this.release();
      return;
    }
    if (item.kind === 'filtered') {
      this.o.metrics.filtered.inc({ operation_type: item.operationType });
      this.o.sink.passed?.(item.position);
      this.window.admitDone(item.position, 'filtered');
      this.o.source.done(1, 0);
      this.release();
      return;
    }
    if (!this.o.mayPublish()) {
      this.o.onFatal(new LeaseNotHeldError());
      this.stop();
      return;
    }
    const { record, readAt, deadLetter, tombstone } = item;
    const slot = this.window.admit(item.position);
    const bytes = publishBytes(item);
    this.inFlightBytes += bytes;
    // An event the source could not read arrives as its dead-letter record (see readItem.ts).
    if (deadLetter) this.o.metrics.deadLetters.inc({ reason: deadLetter });
    const published = this.o.sink.publish(record, item.position);
    // Both publish() calls happen now, in this order, so the sink sends the tombstone after the delete.
    const done = tombstone
      ? Promise.all([published, this.o.sink.publish(tombstone, item.position)]).then(([outcome]) => outcome)
      : published;
    done.then(
      (outcome) => this.acknowledged(slot, record, bytes, deadLetter ? 'dead-lettered' : outcome, readAt),
      (error: unknown) => {
        if (!(error instanceof ShutdownError)) this.o.onFatal(error);
      },
    );
  }

  private acknowledged(
    slot: AckSlot,
    record: OutboundRecord,
    bytes: number,
    outcome: PublishOutcome,
    readAt: number,
  ): void {
    this.window.done(slot, outcome);
    this.inFlightBytes -= bytes;
    this.o.source.done(1, bytes);
    const m = this.o.metrics;
    if (outcome === 'published') {
      this.countAcknowledged(record);
      m.publishLatency.observe((performance.timeOrigin + performance.now() - readAt) / 1000);
    }
    this.release();
    this.acked.notify();
  }

  private countAcknowledged(record: OutboundRecord): void {
    const key = `${record.ns}\u0000${record.operationType}`;
    const entry = this.ackedByLabels.get(key);
    if (entry) entry.n += 1;
    else
      this.ackedByLabels.set(key, { labels: { ns: record.ns, operation_type: record.operationType }, n: 1 });
    if (this.metricsFlushScheduled) return;
    this.metricsFlushScheduled = true;
    queueMicrotask(() => {
      this.metricsFlushScheduled = false;
      for (const e of this.ackedByLabels.values()) {
        if (e.n > 0) this.o.metrics.events.inc(e.labels, e.n);
        e.n = 0;
      }
      this.o.metrics.inFlight.set(this.window.inFlight);
    });
  }

  /** Hands the acknowledged prefix to the checkpointer; the lag gauge follows its newest change. */
  private release(): void {
    const progress = this.window.release();
    if (!progress) return;
    const clusterTime = progress.position.clusterTime;
    if (clusterTime) this.o.metrics.observeClusterTime(clusterTime.high);
    // Released with no event: every earlier event is done and no later one was admitted yet (a tick or
    // filtered change is released when it is admitted, else together with the event it waited for).
    if (progress.published + progress.deadLettered === 0 && !progress.position.snapshot)
      this.o.sink.offerPosition?.(progress.position);
    this.o.checkpointer.record(progress);
  }
}
