/**
 * Exactly-once keeps each multi-document MongoDB transaction in one Kafka transaction, so a
 * read_committed consumer sees all of its changes or none. A Kafka transaction may therefore end only
 * after a record whose MongoDB transaction is known to be over: the record is in none, or something
 * later in the stream is not part of it (the next record, a filtered change, a tick: the stream had
 * nothing more, and a committed transaction's events are visible all at once). See
 * source/mongoTransaction.ts for how the transaction is named.
 */

/** What the boundary rule reads of a record: its MongoDB transaction, and whether that one ended. */
export interface TransactionMember {
  position?: { transaction?: string };
  /** Set once a later item of the stream is not part of this record's MongoDB transaction. */
  transactionEnded?: boolean;
}

export class TransactionEnds {
  private last: TransactionMember | null = null;

  /** A record arrived, in stream order (after every earlier record and passed item). */
  arrived(record: TransactionMember): void {
    this.passed(record.position?.transaction);
    this.last = record;
  }

  /** An item that publishes nothing passed, in stream order (a tick passes with no transaction). */
  passed(transaction: string | undefined): void {
    const last = this.last;
    if (!last || last.transactionEnded) return;
    const open = last.position?.transaction;
    if (open !== undefined && open !== transaction) last.transactionEnded = true;
  }
}

/** Ending a Kafka transaction after `last` would split a MongoDB transaction (as far as is known). */
export function cutsTransaction(last: TransactionMember | undefined): boolean {
  return last?.position?.transaction !== undefined && last.transactionEnded !== true;
}

/**
 * How many of `queue`'s first records continue `last`'s MongoDB transaction (0 when it is over): what
 * a Kafka transaction that is already full still takes, to end on the MongoDB transaction's end.
 */
export function restOfTransaction(
  last: TransactionMember | undefined,
  queue: readonly TransactionMember[],
): number {
  if (!cutsTransaction(last)) return 0;
  const open = last!.position!.transaction;
  let n = 0;
  while (n < queue.length && queue[n]!.position?.transaction === open) n += 1;
  return n;
}
