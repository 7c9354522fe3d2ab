/**
 * A workload writer that keeps its own log of every change MongoDB acknowledged, and the check that
 * compares that log with what reached Kafka: every committed change present, per-document order kept,
 * duplicates only as repeated change IDs. Used by the relay tests and the fault suite.
 */
import { BSON, type MongoClient } from 'mongodb';
import { SeededRandom } from './random.js';

export interface WrittenChange {
  coll: string;
  id: number;
  op: 'insert' | 'update' | 'replace' | 'delete';
  /** Per-document sequence number written into the document (deletes carry the last one + 1). */
  seq: number;
}

export interface WorkloadOptions {
  db: string;
  collections: string[];
  documents: number;
  changes: number;
  /** Share of updates that go to the first few "hot" documents. */
  hotShare?: number;
  /**
   * Share of steps that delete several documents with one deleteMany (default 0.02): mongod logs those as one
   * applyOps entry, so their events share a cluster time and differ only by txnOpIndex in their tokens.
   */
  multiDeleteShare?: number;
  /**
   * Share of steps that update several documents in one transaction (default 0: only where the server has
   * transactions). A committed transaction's events share its cluster time and carry lsid and txnNumber.
   */
  transactionShare?: number;
  /** Pause between writes, ms (0: as fast as MongoDB acknowledges). */
  pauseMs?: number;
  /** Stop early when this returns true. */
  stop?: () => boolean;
  seed?: number;
  /** Retry a write that failed (e.g. during a server restart) until it succeeds; ambiguous outcomes resolved. */
  retryOnError?: boolean;
}

export class Workload {
  readonly log: WrittenChange[] = [];
  private readonly alive = new Map<string, number>(); // "coll/id" -> last seq, for documents that exist

  constructor(
    private readonly client: MongoClient,
    private readonly o: WorkloadOptions,
  ) {}

  async run(): Promise<WrittenChange[]> {
    const random = new SeededRandom(this.o.seed ?? 42);
    const rand = () => random.next();
    const pick = <T>(xs: readonly T[]): T => random.pick(xs);
    for (let n = 0; n < this.o.changes && !(this.o.stop?.() ?? false); n++) {
      const coll = pick(this.o.collections);
      if (rand() < (this.o.multiDeleteShare ?? 0.02)) {
        await this.deleteSeveral(coll);
        continue;
      }
      if (rand() < (this.o.transactionShare ?? 0)) {
        await this.updateInTransaction(coll);
        continue;
      }
      const hot = rand() < (this.o.hotShare ?? 0.3);
      const id = hot ? Math.floor(rand() * 3) : Math.floor(rand() * this.o.documents);
      const key = `${coll}/${id}`;
      const last = this.alive.get(key);
      const c = this.client.db(this.o.db).collection<{ _id: number; seq: number; pad?: string }>(coll);
      if (last === undefined) {
        const seq = this.nextSeq(key);
        await this.write(() => c.insertOne({ _id: id, seq, pad: 'x'.repeat(50) }));
        this.record(coll, id, 'insert', seq);
      } else {
        const r = rand();
        const seq = last + 1;
        if (r < 0.7) {
          await this.write(() => c.updateOne({ _id: id }, { $set: { seq } }));
          this.record(coll, id, 'update', seq);
        } else if (r < 0.9) {
          await this.write(() => c.replaceOne({ _id: id }, { seq, pad: 'y'.repeat(40) }));
          this.record(coll, id, 'replace', seq);
        } else {
          await this.write(() => c.deleteOne({ _id: id }));
          this.record(coll, id, 'delete', seq);
        }
      }
      if (this.o.pauseMs) await new Promise((r) => setTimeout(r, this.o.pauseMs));
    }
    return this.log;
  }

  private readonly lastSeq = new Map<string, number>();

  /** Up to three existing documents of `coll` updated in one transaction. */
  private async updateInTransaction(coll: string): Promise<void> {
    const ids = [...this.alive.keys()]
      .filter((key) => key.startsWith(`${coll}/`))
      .slice(-3)
      .map((key) => Number(key.slice(coll.length + 1)));
    if (ids.length === 0) return;
    const c = this.client.db(this.o.db).collection<{ _id: number; seq: number }>(coll);
    const updates = ids.map((id) => ({ id, seq: this.alive.get(`${coll}/${id}`)! + 1 }));
    const session = this.client.startSession();
    try {
      await session.withTransaction(async () => {
        for (const { id, seq } of updates) await c.updateOne({ _id: id }, { $set: { seq } }, { session });
      });
    } finally {
      await session.endSession();
    }
    for (const { id, seq } of updates) this.record(coll, id, 'update', seq);
  }

  /** Up to five existing documents of `coll` deleted by one deleteMany. */
  private async deleteSeveral(coll: string): Promise<void> {
    const ids = [...this.alive.keys()]
      .filter((key) => key.startsWith(`${coll}/`))
      .slice(0, 5)
      .map((key) => Number(key.slice(coll.length + 1)));
    if (ids.length === 0) return;
    const c = this.client.db(this.o.db).collection<{ _id: number }>(coll);
    await this.write(() => c.deleteMany({ _id: { $in: ids } }));
    for (const id of ids) this.record(coll, id, 'delete', (this.alive.get(`${coll}/${id}`) ?? 0) + 1);
  }

  /** One write; with retryOnError, repeated until MongoDB answers (a duplicate key means it was applied). */
  private async write(op: () => Promise<unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await op();
        return;
      } catch (error) {
        if ((error as { code?: number }).code === 11000 && attempt > 0) return;
        if (!this.o.retryOnError || attempt > 300) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private nextSeq(key: string): number {
    return (this.lastSeq.get(key) ?? -1) + 1;
  }

  private record(coll: string, id: number, op: WrittenChange['op'], seq: number): void {
    const key = `${coll}/${id}`;
    this.lastSeq.set(key, seq);
    if (op === 'delete') this.alive.delete(key);
    else this.alive.set(key, seq);
    this.log.push({ coll, id, op, seq });
  }
}

/** A record as read back from Kafka (key and value strings). */
export interface ReadRecord {
  key: string | null;
  value: string | null;
  partition: number;
  offset: string;
  topic: string;
}

export interface DeliveryReport {
  changes: number;
  lost: number;
  duplicates: number;
  orderViolations: number;
  /** Same key, different value: a duplicate that is not a re-publication. */
  conflictingDuplicates: number;
  unexpected: number;
  lostExamples: string[];
}

/**
 * Compare Kafka with the writer's log. A record identifies its change by (coll, id, op, seq): seq comes
 * from updateDescription for updates and from fullDocument for inserts and replaces; a delete is the
 * next delete of that document. Order is checked per document on first appearance of each change ID,
 * in partition order.
 */
export function verifyDelivery(
  log: readonly WrittenChange[],
  records: readonly ReadRecord[],
): DeliveryReport {
  const byKey = new Map<string, string>();
  let duplicates = 0;
  let conflicting = 0;
  const firsts: ReadRecord[] = [];
  const sorted = [...records].sort(
    (a, b) =>
      a.topic.localeCompare(b.topic) ||
      a.partition - b.partition ||
      Number(BigInt(a.offset) - BigInt(b.offset)),
  );
  for (const r of sorted) {
    const key = r.key ?? '';
    const prior = byKey.get(key);
    if (prior !== undefined) {
      duplicates += 1;
      if (prior !== withoutLookup(r.value)) conflicting += 1;
      continue;
    }
    byKey.set(key, withoutLookup(r.value));
    firsts.push(r);
  }
  const seen = new Map<string, number>(); // identity -> count
  const perDocSeqs = new Map<string, number[]>();
  let unexpected = 0;
  for (const r of firsts) {
    const ev = BSON.EJSON.parse(r.value ?? '{}', { relaxed: true }) as ChangeEventLike;
    const identity = identify(ev);
    if (!identity) {
      unexpected += 1;
      continue;
    }
    seen.set(identity.key, (seen.get(identity.key) ?? 0) + 1);
    if (identity.seq < 0) continue;
    const list = perDocSeqs.get(identity.doc) ?? [];
    list.push(identity.seq);
    perDocSeqs.set(identity.doc, list);
  }
  let lost = 0;
  const lostExamples: string[] = [];
  for (const w of log) {
    const key = `${w.coll}/${w.id}/${w.op}/${w.op === 'delete' ? 'd' : w.seq}`;
    const count = seen.get(key) ?? 0;
    if (count > 0) seen.set(key, count - 1);
    else {
      lost += 1;
      if (lostExamples.length < 5) lostExamples.push(key);
    }
  }
  let orderViolations = 0;
  for (const seqs of perDocSeqs.values()) {
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) orderViolations += 1;
  }
  return {
    changes: log.length,
    lost,
    duplicates,
    orderViolations,
    conflictingDuplicates: conflicting,
    unexpected,
    lostExamples,
  };
}

/**
 * A re-published change is the same change, but `fullDocument: updateLookup` is looked up when the
 * event is read, so a re-read may carry a later state of the document. Everything else must match.
 */
function withoutLookup(value: string | null): string {
  const ev = JSON.parse(value ?? '{}') as Record<string, unknown>;
  if (ev.operationType === 'update') delete ev.fullDocument;
  return JSON.stringify(ev);
}

interface ChangeEventLike {
  operationType?: string;
  ns?: { coll?: string };
  documentKey?: { _id?: number };
  fullDocument?: { seq?: number } | null;
  updateDescription?: { updatedFields?: { seq?: number } };
}

function identify(ev: ChangeEventLike): { key: string; doc: string; seq: number } | null {
  const coll = ev.ns?.coll;
  const id = ev.documentKey?._id;
  if (coll === undefined || id === undefined) return null;
  const doc = `${coll}/${id}`;
  switch (ev.operationType) {
    case 'insert':
    case 'replace': {
      const seq = ev.fullDocument?.seq;
      return seq === undefined ? null : { key: `${doc}/${ev.operationType}/${seq}`, doc, seq };
    }
    case 'update': {
      const seq = ev.updateDescription?.updatedFields?.seq;
      return seq === undefined ? null : { key: `${doc}/update/${seq}`, doc, seq };
    }
    case 'delete':
      // A delete carries no fields to order it by; it is counted, not order-checked.
      return { key: `${doc}/delete/d`, doc, seq: -1 };
    default:
      return null;
  }
}

/**
 * Waits until Kafka holds every change of the log. It fails only when delivery stalls — no new record
 * for `stallMs` while changes are still missing — so a slow machine is not mistaken for a loss.
 */
export async function awaitDelivery(
  log: readonly WrittenChange[],
  records: () => readonly ReadRecord[],
  { stallMs = 60_000, intervalMs = 1000 }: { stallMs?: number; intervalMs?: number } = {},
): Promise<DeliveryReport> {
  let seen = -1;
  let lastProgress = Date.now();
  for (;;) {
    const current = records();
    const report = verifyDelivery(log, current);
    if (report.lost === 0) return report;
    if (current.length !== seen) {
      seen = current.length;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > stallMs) {
      return report;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * One summary line: `faults: <name> [labels, e.g. mode=... seed=...] changes=... lost=... duplicates=...
 * order_violations=... [extra counts]`.
 */
export function formatReport(
  name: string,
  r: DeliveryReport,
  extra: Record<string, number> = {},
  labels: Record<string, string | number> = {},
): string {
  const parts = [
    ...Object.entries(labels).map(([k, v]) => `${k}=${v}`),
    `changes=${r.changes}`,
    `lost=${r.lost}`,
    `duplicates=${r.duplicates}`,
    `order_violations=${r.orderViolations}`,
  ];
  for (const [k, v] of Object.entries(extra)) parts.push(`${k}=${v}`);
  return `faults: ${name} ${parts.join(' ')}`;
}
