/**
 * RELAY_DELIVERY=exactly-once: the sink with a transactional producer. Records are sent exactly as
 * the at-least-once sink sends them (same routing, one call per leader, same retries), inside a Kafka
 * transaction, and the transaction also carries the position record (positions.ts). A publish resolves
 * only once its transaction committed, so the pump, the ack window and the MongoDB checkpoint (now a
 * mirror for operators) see an event as done only when read_committed consumers can see it.
 *
 * Transaction boundaries (group commit): a transaction takes records while they keep coming; it
 * commits when the queue runs empty (the pump's in-flight limits, RELAY_MAX_IN_FLIGHT and _BYTES,
 * bound how many records that is, since uncommitted events are in flight) or RELAY_TRANSACTION_MAX_MS
 * after its first record. Records of one transaction are taken in stream order, so its position (that
 * of its last record) covers all of them and nothing after.
 *
 * A multi-document MongoDB transaction is never cut (transactionBoundary.ts): the Kafka transaction
 * waits for the stream to show that the MongoDB one is over, and one that is full takes the rest of
 * the MongoDB transaction first. Only a MongoDB transaction that does not fit the in-flight limits (the
 * pump stops admitting while this one waits) or outlasts half of KAFKA_TRANSACTION_TIMEOUT_MS is
 * split, logged and counted (mongo_kafka_relay_mongodb_transactions_split_total).
 *
 * Failures:
 * - retriable produce errors: retried inside the transaction (same batches, same sequence numbers);
 * - fencing (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED): ProducerFencedError, the relay exits 8;
 * - other producer-state errors, or a commit whose answer is lost: recovery. A new producer
 *   initialises the same transactional id, which makes the coordinator finish the old transaction
 *   (roll a prepared commit forward, abort anything else); the committed position is then read back,
 *   and if it is not this transaction's, its records are sent again in a new one.
 */
import type { RecordMetadata, Transaction } from 'kafkajs';
import type { Position } from '../pipeline/ackWindow.js';
import { KafkaRefusedError, ProducerFencedError, ShutdownError } from './errors.js';
import { KafkaSink, type KafkaSinkOptions } from './kafkaSink.js';
import { classify, rootMessage } from './kafkaErrors.js';
import type { PendingRecord } from './pendingRecord.js';
import { markerRecord, positionRecord, type PositionsTopic } from './positionRecords.js';
import { PositionTracker, type CommittedPosition, type CommittedSnapshot } from './positions.js';
import { readCommittedPosition } from './positionsReader.js';
import type { OutboundRecord } from '../pipeline/toRecord.js';
import type { PublishOutcome } from './pendingRecord.js';
import { cutsTransaction, restOfTransaction } from './transactionBoundary.js';
import { TransactionHold, type SplitReason } from './transactionHold.js';

export type { SplitReason };

export interface ExactlyOnceOptions {
  transactionalId: string;
  positionsTopic: string;
  /** The position record's key. */
  checkpointId: string;
  /** Names this relay's transactions (the lease owner). */
  owner: string;
  maxTransactionMs: number;
  /**
   * Records and bytes after which a transaction commits although more keep coming: half the pump's
   * in-flight limits, so the pump fills the other half while this half commits (no bubble).
   */
  maxTransactionRecords: number;
  maxTransactionBytes: number;
  transactionTimeoutMs: number;
  /** Least time (ms) between position-only transactions of a quiet stream (RELAY_HEARTBEAT_MS). */
  idlePositionMs: number;
  /** Bound of the start's read of the positions topic. */
  readTimeoutMs: number;
}

const FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);
/** Tries of the first initialisation before a coordinator that cannot be found counts as a refusal. */
const COORDINATOR_ATTEMPTS = 5;

export class TransactionalKafkaSink extends KafkaSink {
  private txn: Transaction | null = null;
  private txnOpenedAt = 0;
  /** Records taken into the open transaction, in order (acknowledged in it or not). */
  private txnRecords: PendingRecord[] = [];
  private txnBytes = 0;
  private seq = 0;
  private lastCommitAt = 0;
  private recovery: string | null = null;
  private tracker: PositionTracker = new PositionTracker({ token: null, clusterTime: null });
  private idleTimer: NodeJS.Timeout | null = null;
  private commitWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly hold: TransactionHold;
  private readonly positionsTopic: PositionsTopic;
  /** What the positions topic held for this checkpoint when the relay started. */
  startPosition: CommittedPosition | null = null;
  transactionsCommitted = 0;

  constructor(
    kafka: ConstructorParameters<typeof KafkaSink>[0],
    options: KafkaSinkOptions,
    private readonly eo: ExactlyOnceOptions,
    private readonly hooks: {
      onCommit?: (records: number, ms: number) => void;
      onSplit?: (reason: SplitReason) => void;
    } = {},
  ) {
    super(kafka, {
      ...options,
      producerConfig: { transactionalId: eo.transactionalId, transactionTimeout: eo.transactionTimeoutMs },
    });
    this.positionsTopic = { topic: eo.positionsTopic, checkpointId: eo.checkpointId };
    this.hold = new TransactionHold({
      transactionTimeoutMs: eo.transactionTimeoutMs,
      logger: options.logger,
      onSplit: hooks.onSplit,
    });
  }

  /**
   * Fence every earlier producer of the transactional id, let the coordinator decide its open
   * transaction, then read the committed position (see positionsReader.ts).
   */
  protected override async afterConnect(): Promise<void> {
    await this.directory.ensure([this.eo.positionsTopic]);
    this.startPosition = await this.firstInitialisation();
    const p = this.startPosition;
    this.tracker = new PositionTracker(
      { token: p?.token ?? null, clusterTime: p?.clusterTime ?? null },
      p?.snapshot ?? null,
    );
  }

  /**
   * Where this run starts, once decided by the relay (the committed position, or the start it
   * persisted), and the snapshot being copied (null: none).
   */
  begin(
    start: { token: CommittedPosition['token']; clusterTime: CommittedPosition['clusterTime'] },
    snapshot: CommittedSnapshot | null,
  ): void {
    this.tracker = new PositionTracker(start, snapshot);
  }

  /** A new snapshot begins (RELAY_SNAPSHOT=when-needed after history was lost). */
  beginSnapshot(planId: string): void {
    this.tracker.beginSnapshot(planId);
  }

  /** Commit the position as it stands now (the start of a run), in a transaction of its own. */
  commitPosition(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.commitWaiters.push({ resolve, reject });
      this.wake?.();
    });
  }

  override publish(record: OutboundRecord, position?: Position): Promise<PublishOutcome> {
    const queued = this.queue.length;
    const published = super.publish(record, position);
    if (this.queue.length > queued) this.hold.arrived(this.queue[this.queue.length - 1]!);
    return published;
  }

  /** An item that publishes nothing (a filtered change, a tick) was admitted; see pump.ts. */
  passed(position: Position): void {
    this.hold.passed(position.transaction);
    this.wake?.();
  }

  /** The pump admits nothing more until something is acknowledged: a held transaction must commit. */
  full(): void {
    this.hold.full();
    this.wake?.();
  }

  /** A released stream position with no event (a tick, a filtered change); see PositionTracker.offer. */
  offerPosition(position: Position): void {
    if (this.queue.length > 0 || this.txnRecords.length > 0 || this.delivering > 0) return;
    this.tracker.offer(position);
    if (this.idleTimer) return;
    const wait = Math.max(0, this.lastCommitAt + this.eo.idlePositionMs - Date.now());
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.wake?.();
    }, wait);
    this.idleTimer.unref();
  }

  protected override async run(): Promise<void> {
    while (!this.abandoned && !this.failed) {
      if (this.recovery) {
        await this.recover(null);
        continue;
      }
      if (this.queue.length === 0) {
        if (this.txnRecords.length > 0) {
          const last = this.txnRecords.at(-1);
          const decision = this.hold.decide(last, this.txnOpenedAt, this.stopping);
          if (decision === 'wait') {
            await this.waitForMore();
            continue;
          }
          if (decision === 'abort') return this.abortHeld();
          if (decision !== 'commit') this.hold.split(decision, last, this.txnRecords.length);
          await this.commit();
          continue;
        }
        const idleDue = this.tracker.hasOffer && Date.now() - this.lastCommitAt >= this.eo.idlePositionMs;
        if (idleDue || this.commitWaiters.length > 0) {
          await this.commit();
          continue;
        }
        if (this.stopping) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (!(await this.tryOpenTransaction())) continue;
      const batch = this.takeBatch();
      for (const p of batch) if (p.position) this.tracker.take(p.position);
      this.txnRecords.push(...batch);
      for (const p of batch) this.txnBytes += p.record.size;
      this.delivering = batch.length;
      try {
        await this.deliver(batch);
      } finally {
        this.delivering = 0;
      }
      // deliver() puts back what it could not send; in a transaction it must go out again with it.
      this.takeBackUnsent(batch);
      if (this.recovery || this.failed) continue;
      if (this.queue.length === 0) continue; // decided above: commit, or wait for the MongoDB transaction
      if (this.isFull() && !cutsTransaction(this.txnRecords.at(-1))) await this.commit();
    }
  }

  /**
   * A batch no larger than what the transaction has room for; a full transaction takes only the rest
   * of its open MongoDB transaction, to end where that ends. (Taking more than the room would let a
   * transaction fill the pump's whole in-flight window and then wait for a MongoDB transaction's rest,
   * which the pump cannot admit: a split.)
   */
  protected override takeBatch(): PendingRecord[] {
    if (this.isFull()) {
      const n = restOfTransaction(this.txnRecords.at(-1), this.queue);
      if (n > 0) return this.queue.splice(0, Math.min(n, this.options.maxBatchRecords));
    }
    const roomRecords = Math.max(1, this.eo.maxTransactionRecords - this.txnRecords.length);
    const roomBytes = Math.max(1, this.eo.maxTransactionBytes - this.txnBytes);
    const most = Math.min(roomRecords, this.options.maxBatchRecords);
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < most) {
      const size = this.queue[n]!.record.size;
      if (n > 0 && bytes + size > Math.min(roomBytes, this.options.maxBatchBytes)) break;
      bytes += size;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private isFull(): boolean {
    return (
      this.txnRecords.length > 0 &&
      (Date.now() - this.txnOpenedAt >= this.eo.maxTransactionMs ||
        this.txnRecords.length >= this.eo.maxTransactionRecords ||
        this.txnBytes >= this.eo.maxTransactionBytes)
    );
  }

  /** Until a record or a passed item arrives, the pump is full, the relay stops, or the hold's bound. */
  private async waitForMore(): Promise<void> {
    const bound = this.hold.deadline(this.txnOpenedAt) - Date.now();
    const timer = setTimeout(() => this.wake?.(), Math.max(0, bound));
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
    clearTimeout(timer);
  }

  /** Stopping inside a MongoDB transaction: abort, so no part of it becomes visible alone. */
  private async abortHeld(): Promise<void> {
    const txn = this.txn;
    this.txn = null;
    await txn?.abort().catch((error: unknown) => {
      this.options.logger.warn(
        { err: error },
        'could not abort the open Kafka transaction at shutdown; the next start aborts it',
      );
    });
  }

  override async stop(deadline: number): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    try {
      await super.stop(deadline);
    } finally {
      // Records of a transaction that did not commit stay after the checkpoint: read again after a restart.
      for (const p of this.txnRecords.splice(0)) p.reject(this.failed ?? new ShutdownError());
      for (const w of this.commitWaiters.splice(0)) w.reject(this.failed ?? new ShutdownError());
    }
  }

  protected override interrupted(): boolean {
    return this.recovery !== null;
  }

  protected override send(call: PendingRecord[]): Promise<RecordMetadata[]> {
    if (!this.txn) return Promise.reject(new Error('bug: a transactional send without a transaction'));
    return this.txn.sendBatch(this.batchOf(call));
  }

  /** Acknowledged inside the transaction: resolved only when it commits. */
  protected override acknowledge(p: PendingRecord): void {
    p.settled = true;
    this.setHealthy(true);
  }

  protected override async resetProducer(errorType: string): Promise<void> {
    if (FENCED.has(errorType) && !this.outlivedTimeout()) {
      this.fail(new ProducerFencedError(this.eo.transactionalId, errorType));
      return;
    }
    this.recovery = errorType;
  }

  /**
   * The open transaction is older than its timeout: the coordinator aborts such a transaction and
   * bumps the epoch, so a fencing error then is (almost certainly) that abort — a Kafka outage or a
   * stall longer than KAFKA_TRANSACTION_TIMEOUT_MS — not another producer: recovered from, not fatal.
   * (A relay paused past its lease is stopped by the lease first; see mayProduce.)
   */
  private outlivedTimeout(): boolean {
    return this.txn !== null && Date.now() - this.txnOpenedAt >= this.eo.transactionTimeoutMs;
  }

  protected override failAll(error: Error, pending: PendingRecord[]): void {
    super.failAll(error, pending);
    for (const p of this.txnRecords.splice(0)) p.reject(error);
    for (const w of this.commitWaiters.splice(0)) w.reject(error);
  }

  private fail(error: Error): void {
    this.failAll(error, []);
  }

  /**
   * deliver() puts what it could not send back on the queue (it stopped: recovery, failure or the
   * stop deadline); those records belong to the open transaction, which decides their fate.
   */
  private takeBackUnsent(batch: PendingRecord[]): void {
    const inBatch = new Set(batch);
    let n = 0;
    while (n < this.queue.length && inBatch.has(this.queue[n]!)) n += 1;
    if (n > 0) this.queue.splice(0, n);
  }

  /** Opens the transaction if none is open; a failure is recovered from (false: not open). */
  private async tryOpenTransaction(): Promise<boolean> {
    try {
      await this.openTransaction();
      return true;
    } catch (error) {
      const { type } = classify(error);
      if (FENCED.has(type)) this.fail(new ProducerFencedError(this.eo.transactionalId, type));
      else this.recovery = type;
      return false;
    }
  }

  private async openTransaction(): Promise<void> {
    if (this.txn) return;
    if (!this.producerConnected) {
      await this.producer.connect();
      this.producerConnected = true;
    }
    this.txn = await this.producer.transaction();
    this.txnOpenedAt = Date.now();
  }

  /** Send the position record in the open transaction and commit it. */
  private async commit(): Promise<void> {
    if (!(await this.tryOpenTransaction())) return;
    this.seq += 1;
    const position = this.tracker.next(this.eo.owner, this.seq);
    const started = Date.now();
    const record = positionRecord(this.positionsTopic, position, started);
    await this.deliver([record]);
    this.takeBackUnsent([record]);
    if (this.failed || this.abandoned) return;
    if (this.recovery || !record.settled) {
      this.recovery ??= 'position record not sent';
      return;
    }
    const txn = this.txn!;
    try {
      await txn.commit();
    } catch (error) {
      const { type } = classify(error);
      if (FENCED.has(type) && !this.outlivedTimeout())
        return this.fail(new ProducerFencedError(this.eo.transactionalId, type));
      this.options.logger.warn(
        { err: error, errorType: type, transaction: position.transaction },
        'the commit of a Kafka transaction got no answer; recovering: the committed position decides whether its records go out again',
      );
      return this.recover(position, started);
    }
    this.committed(started);
  }

  private committed(started: number): void {
    const records = this.txnRecords.splice(0);
    this.txnBytes = 0;
    this.hold.committed();
    this.txn = null;
    this.tracker.commit();
    this.lastCommitAt = Date.now();
    this.transactionsCommitted += 1;
    for (const p of records) this.resolveRecord(p);
    for (const w of this.commitWaiters.splice(0)) w.resolve();
    this.hooks.onCommit?.(records.length, this.lastCommitAt - started);
  }

  /**
   * A new producer of the same transactional id: the coordinator completes or aborts the old
   * transaction. `inDoubt`: the position of a commit whose answer was lost, looked for in the topic,
   * and `commitStartedAt` when that commit began.
   */
  private async recover(inDoubt: CommittedPosition | null, commitStartedAt = Date.now()): Promise<void> {
    const reason = this.recovery ?? 'commit in doubt';
    this.options.logger.warn(
      { reason, records: this.txnRecords.length },
      'recovering the transactional producer: a new producer fences the old one and its open transaction is decided',
    );
    this.options.onProducerReset?.(reason);
    for (let attempt = 1; !this.abandoned && !this.failed; attempt++) {
      // Cleared for the attempt: the marker's delivery below must not count as interrupted.
      this.recovery = null;
      try {
        const old = this.producer;
        this.producer = this.createProducer();
        this.producerConnected = false;
        this.txn = null;
        await old.disconnect().catch(() => undefined);
        await this.producer.connect();
        this.producerConnected = true;
        const now = await this.initialiseAndRead();
        const t = now?.transaction;
        if (inDoubt && t?.owner === inDoubt.transaction.owner && t.seq === inDoubt.transaction.seq) {
          // Its commit took from the first try until now: that is what the commit-time metric counts.
          this.committed(commitStartedAt);
          return;
        }
        this.tracker.abort();
        const again = this.txnRecords.splice(0);
        this.txnBytes = 0;
        for (const p of again) {
          p.settled = false;
          p.route = null;
        }
        this.queue.unshift(...again);
        return;
      } catch (error) {
        const { kind, type } = classify(error);
        if (FENCED.has(type)) return this.fail(new ProducerFencedError(this.eo.transactionalId, type));
        if (error instanceof KafkaRefusedError) return this.fail(error);
        if (kind === 'refused')
          return this.fail(new KafkaRefusedError(type, 'init-producer', null, rootMessage(error)));
        this.logFailure(error, this.txnRecords, attempt);
        await this.sleepUnlessAbandoned(this.backoffMs(attempt));
      }
    }
  }

  /**
   * The first initialisation, where a missing right shows: without DESCRIBE on the transactional id
   * the broker answers FindCoordinator with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which kafkajs
   * reports only as "Failed to find group coordinator". Still that after a few tries on a cluster that
   * answers everything else is taken as the refusal it almost always is (exit 6, naming the right).
   */
  private async firstInitialisation(): Promise<CommittedPosition | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.initialiseAndRead();
      } catch (error) {
        if ((error as Error).name !== 'KafkaJSGroupCoordinatorNotFound') throw error;
        if (attempt >= COORDINATOR_ATTEMPTS)
          throw new KafkaRefusedError(
            'TRANSACTION_COORDINATOR_NOT_FOUND',
            'init-producer',
            null,
            this.eo.transactionalId,
          );
        this.options.logger.warn(
          { transactionalId: this.eo.transactionalId, attempt },
          'Kafka named no transaction coordinator for the transactional id; retrying',
        );
        this.txn = null;
        await this.sleepUnlessAbandoned(2000);
      }
    }
  }

  /** Initialise the producer's transactions (fencing), commit a marker, read the committed position. */
  private async initialiseAndRead(): Promise<CommittedPosition | null> {
    await this.openTransaction();
    const marker = `${this.eo.owner}:${Date.now()}:${Math.random().toString(36).slice(2)}`;
    const record = markerRecord(this.positionsTopic, marker);
    await this.deliver([record]);
    this.takeBackUnsent([record]);
    if (!record.settled) throw this.failed ?? new Error(`recovery needed (${this.recovery ?? 'stopped'})`);
    await this.txn!.commit();
    this.txn = null;
    try {
      return await readCommittedPosition(
        this.kafka,
        this.eo.positionsTopic,
        this.eo.checkpointId,
        marker,
        this.eo.readTimeoutMs,
      );
    } catch (error) {
      const { kind, type } = classify(error);
      if (kind !== 'refused') throw error;
      throw new KafkaRefusedError(type, 'read-positions', this.eo.positionsTopic, rootMessage(error));
    }
  }
}
