/**
 * Exactly-once's hold on a Kafka transaction whose last record's MongoDB transaction may go on: what the
 * stream has shown (transactionBoundary.ts), whether the pump can still admit the rest, and the decision
 * the transactional sink acts on when nothing is queued. A split is logged and counted here.
 */
import type { Logger } from 'pino';
import { TransactionEnds, cutsTransaction, type TransactionMember } from './transactionBoundary.js';

/** Why a MongoDB transaction was split across Kafka transactions. */
export type SplitReason = 'in-flight-limit' | 'transaction-timeout';

/**
 * commit: nothing is cut; wait: the MongoDB transaction may go on; abort: the relay stops inside one
 * (it is read again after a restart); a SplitReason: commit although the MongoDB transaction may go on.
 */
export type HoldDecision = 'commit' | 'wait' | 'abort' | SplitReason;

export class TransactionHold {
  private readonly ends = new TransactionEnds();
  /** The pump admits nothing more until something is acknowledged. */
  private pumpFull = false;

  constructor(
    private readonly o: {
      /** The hold's bound: half of it, from the Kafka transaction's start. */
      transactionTimeoutMs: number;
      logger: Pick<Logger, 'warn'>;
      onSplit?: (reason: SplitReason) => void;
    },
  ) {}

  /** A record was queued, in stream order. */
  arrived(record: TransactionMember): void {
    this.ends.arrived(record);
  }

  /** An item that publishes nothing passed (a filtered change; a tick passes with none). */
  passed(transaction: string | undefined): void {
    this.ends.passed(transaction);
  }

  /** The pump said it cannot admit more until something is acknowledged. */
  full(): void {
    this.pumpFull = true;
  }

  /** A Kafka transaction committed: its records are acknowledged, so the pump has room again. */
  committed(): void {
    this.pumpFull = false;
  }

  /** With nothing queued: what to do with the open Kafka transaction, whose last record is `last`. */
  decide(last: TransactionMember | undefined, openedAt: number, stopping: boolean): HoldDecision {
    if (!cutsTransaction(last)) return 'commit';
    if (stopping) return 'abort';
    if (this.pumpFull) return 'in-flight-limit';
    if (Date.now() >= this.deadline(openedAt)) return 'transaction-timeout';
    return 'wait';
  }

  /** When a hold that began with the Kafka transaction at `openedAt` must end. */
  deadline(openedAt: number): number {
    return openedAt + this.o.transactionTimeoutMs / 2;
  }

  split(reason: SplitReason, last: TransactionMember | undefined, records: number): void {
    this.o.logger.warn(
      { reason, transaction: last?.position?.transaction, records },
      reason === 'in-flight-limit'
        ? 'a MongoDB transaction does not fit RELAY_MAX_IN_FLIGHT / RELAY_MAX_IN_FLIGHT_BYTES: its changes are split across Kafka transactions; raise the limits above the largest transaction to keep each whole'
        : 'a MongoDB transaction is still being read after half of KAFKA_TRANSACTION_TIMEOUT_MS: its changes are split across Kafka transactions',
    );
    this.o.onSplit?.(reason);
  }
}
