/**
 * Reassembling change events that MongoDB split with `$changeStreamSplitLargeEvent` (7.0+, 6.0.9+):
 * an event over 16 MB arrives as fragments, each with a disjoint share of its top-level fields, its own
 * resume token and `splitEvent: {fragment: n, of: total}`, in order
 * (https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStreamSplitLargeEvent/).
 *
 * Invariant: only WHOLE events leave the assembler, and a whole event's token is its LAST fragment's.
 * MongoDB documents that a stream resumed from a fragment's token continues with the next fragment, and
 * from the last fragment's token with the next event. So the last fragment's token is exactly "after
 * this event" — a correct checkpoint — while any earlier fragment's token would resume mid-event, with
 * fragments this process no longer holds after a restart: it must never become a position. (Callers
 * also take no post-batch resume token while fragments are pending, for the same reason.)
 */
import type { Document } from 'mongodb';
import type { ResumeToken } from './resumeToken.js';

export interface SplitInfo {
  fragment: number;
  of: number;
}

export class FragmentSequenceError extends Error {
  constructor(detail: string) {
    super(`split change event fragments out of sequence: ${detail}`);
    this.name = 'FragmentSequenceError';
  }
}

/** The fragment's `splitEvent`, or null for an ordinary (unsplit) event. */
export function splitInfo(event: Document): SplitInfo | null {
  const s = (event as { splitEvent?: unknown }).splitEvent;
  if (typeof s !== 'object' || s === null) return null;
  const { fragment, of } = s as { fragment?: unknown; of?: unknown };
  const n = Number(fragment);
  const total = Number(of);
  if (!Number.isInteger(n) || !Number.isInteger(total) || n < 1 || total < 1 || n > total) {
    throw new FragmentSequenceError(`malformed splitEvent ${JSON.stringify(s)}`);
  }
  return { fragment: n, of: total };
}

export class FragmentAssembler {
  private parts: Document[] = [];
  private expected: number | null = null;

  /** True while fragments of an event are held: the stream's position is inside that event. */
  get assembling(): boolean {
    return this.parts.length > 0;
  }

  /**
   * Add one fragment; returns the whole event once its last fragment arrived. Throws
   * FragmentSequenceError on a gap or a fragment of another sequence (then call reset()).
   */
  add(fragment: Document, info: SplitInfo): { event: Document; token: ResumeToken } | null {
    const want = this.parts.length + 1;
    if (info.fragment !== want || (this.expected !== null && info.of !== this.expected)) {
      throw new FragmentSequenceError(
        `expected fragment ${want} of ${this.expected ?? info.of}, got ${info.fragment} of ${info.of}`,
      );
    }
    this.expected = info.of;
    this.parts.push(fragment);
    if (info.fragment < info.of) return null;
    const parts = this.parts;
    this.reset();
    const token = (fragment as { _id: ResumeToken })._id;
    const event: Document = { _id: token };
    for (const part of parts) {
      for (const [key, value] of Object.entries(part)) {
        if (key !== '_id' && key !== 'splitEvent') event[key] = value;
      }
    }
    return { event, token };
  }

  reset(): void {
    this.parts = [];
    this.expected = null;
  }
}
