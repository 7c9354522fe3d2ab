/**
 * Which multi-document MongoDB transaction a change belongs to. The server documents `lsid` (the
 * session) and `txnNumber` on every event of a transaction, and nothing on other events; together they
 * name one transaction. Its events share the commit's cluster time and are contiguous in a replica
 * set's (or one shard's) stream, so "the transaction ended" is known when the stream moves on: an
 * event of another (or no) transaction, or an empty batch (a transaction's events become visible at
 * once, at commit, so a stream with nothing more to give has given all of them).
 */
import type { Document } from 'mongodb';

interface TransactionFields {
  lsid?: { id?: unknown; uid?: unknown };
  txnNumber?: unknown;
}

/** `<session id>[:<user digest>]:<txnNumber>`, or undefined outside a transaction. */
export function transactionOf(event: Document): string | undefined {
  const { lsid, txnNumber } = event as TransactionFields;
  if (!lsid || txnNumber === undefined || txnNumber === null) return undefined;
  const uid = lsid.uid === undefined ? '' : `:${hexOf(lsid.uid)}`;
  return `${hexOf(lsid.id)}${uid}:${String(txnNumber)}`;
}

/** A session id (UUID, binary) or user digest as hex; anything else as its text. */
function hexOf(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  const bytes = (value as { buffer?: unknown } | null)?.buffer;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes).toString('hex');
  return String(value);
}
