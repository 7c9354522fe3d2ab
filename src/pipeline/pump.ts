/**
 * The relay pipeline: source -> record -> sink -> ack window -> checkpointer.
 * Reading pauses while the in-flight limit or the checkpoint bound is reached, so memory stays bounded
 * during a Kafka outage and, in strict mode, each event is persisted before the next one is sent.
 */
import type { Logger } from 'pino';
import type { Timestamp } from 'mongodb';
import type { ChangeSource, SourceItem } from '../source/changeSource.js';
import { clusterTimeOfToken } from '../source/resumeToken.js';
import type { KafkaSink, PublishOutcome } from '../sink/kafkaSink.js';
import { ShutdownError } from '../sink/kafkaSink.js';
import type { Checkpointer } from '../checkpoint/checkpointer.js';
import { LeaseNotHeldError } from '../checkpoint/leaseKeeper.js';
import type { RelayMetrics } from '../metrics/relayMetrics.js';
import { Signal } from '../util/async.js';
import { AckWindow, type AckSlot, type Position } from './ackWindow.js';
import { deadLetterFor, toRecord, type OutboundRecord, type RecordOptions } from './toRecord.js';
import type { TopicRouter } from './topicRouter.js';

export interface PumpOptions {
  source: ChangeSource;
  sink: KafkaSink;
  checkpointer: Checkpointer;
  router: TopicRouter;
  record: RecordOptions;
  /** null: publish every operation type. */
  operationTypes: ReadonlySet<string> | null;
  maxInFlight: number;
  metrics: RelayMetrics;
  logger: Logger;
  /** False once the lease is lost: nothing more may be published. */
  mayPublish: () => boolean;
  /** Where events the source could not read (item.deadLetter) are named. */
  deadLetterTopic: string;
  onFatal: (error: unknown) => void;
}

export class Pump {
  readonly window = new AckWindow();
  private readonly acked = new Signal();
  private stopping = false;
  private lastClusterTime: Timestamp | null = null;

  constructor(private readonly o: PumpOptions) {}

  /** Read and publish until stop() or an error from the source (history lost, fatal). */
  async run(): Promise<void> {
    while (!this.stopping) {
      await this.waitForRoom();
      if (this.stopping) break;
      const item = await this.o.source.next();
      if (!item || this.stopping) break;
      this.admit(item);
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

  private async waitForRoom(): Promise<void> {
    const cp = this.o.checkpointer;
    while (
      !this.stopping &&
      (this.window.inFlight >= this.o.maxInFlight || this.window.inFlight + cp.unpersistedEvents >= cp.bound)
    ) {
      await Promise.race([this.acked.wait(), cp.changed()]);
    }
  }

  private admit(item: SourceItem): void {
    if (item.kind === 'tick') {
      const tokenTime = clusterTimeOfToken(item.token);
      if (tokenTime) this.o.metrics.observeClusterTime(tokenTime.high);
      this.window.admitDone({ token: item.token, clusterTime: this.lastClusterTime }, 'tick');
      this.release();
      return;
    }
    const { event, token } = item;
    const clusterTime = (event as { clusterTime?: Timestamp }).clusterTime ?? null;
    if (clusterTime) this.lastClusterTime = clusterTime;
    const position: Position = { token, clusterTime: this.lastClusterTime };
    const types = this.o.operationTypes;
    if (types && !types.has(event.operationType)) {
      this.o.metrics.filtered.inc({ operation_type: event.operationType });
      this.window.admitDone(position, 'filtered');
      this.release();
      return;
    }
    if (!this.o.mayPublish()) {
      this.o.onFatal(new LeaseNotHeldError());
      this.stop();
      return;
    }
    const { deadLetter } = item;
    const converted = toRecord(event, token, this.o.router, this.o.record);
    const record = deadLetter
      ? deadLetterFor(converted, deadLetter.reason, deadLetter.detail, this.o.deadLetterTopic)
      : converted;
    const slot = this.window.admit(position);
    this.o.metrics.inFlight.set(this.window.inFlight);
    this.o.sink.publish(record).then(
      (outcome) =>
        this.acknowledged(slot, record, deadLetter ? 'dead-lettered' : outcome, item.readAt, clusterTime),
      (error: unknown) => {
        if (!(error instanceof ShutdownError)) this.o.onFatal(error);
      },
    );
  }

  private acknowledged(
    slot: AckSlot,
    record: OutboundRecord,
    outcome: PublishOutcome,
    readAt: number,
    clusterTime: Timestamp | null,
  ): void {
    this.window.done(slot, outcome);
    const m = this.o.metrics;
    m.inFlight.set(this.window.inFlight);
    if (outcome === 'published') {
      m.events.inc({ ns: record.ns, operation_type: record.operationType });
      m.publishLatency.observe((performance.now() - readAt) / 1000);
    }
    if (clusterTime) m.observeClusterTime(clusterTime.high);
    this.release();
    this.acked.notify();
  }

  private release(): void {
    const progress = this.window.release();
    if (progress) this.o.checkpointer.record(progress);
  }
}
