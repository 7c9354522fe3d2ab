/**
 * How a change stream error is handled. The driver already resumes once on its own for the errors the
 * change streams spec calls resumable
 * (https://github.com/mongodb/specifications/blob/master/source/change-streams/change-streams.md#resumable-error);
 * what reaches us is sorted into:
 *  - history-lost: the position is no longer in the oplog. Never skipped silently. A new stream learns it
 *                  as ChangeStreamHistoryLost (286); a live cursor whose position the capped oplog overwrote
 *                  learns it as CappedPositionLost (136), which the spec excludes from resumable errors.
 *  - transient:    the network, an election, a shutdown — reopen from the last position, with backoff.
 *  - fatal:        everything else (auth, a bad pipeline, an unsupported option): exit and let the
 *                  orchestrator restart us from the checkpoint, after an operator looked at the message.
 */
import { MongoError, MongoNetworkError, MongoServerSelectionError, MongoServerError } from 'mongodb';

/** The server ended the change stream's cursor without an invalidate: reopen from the last position. */
export class CursorClosedByServerError extends Error {
  override readonly name = 'CursorClosedByServerError';
}

export type StreamErrorClass = 'history-lost' | 'transient' | 'fatal';

const HISTORY_LOST = 286; // ChangeStreamHistoryLost
const CAPPED_POSITION_LOST = 136; // CappedPositionLost
const TRANSIENT_CODES = new Set([
  6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
]);

export function classifyStreamError(error: unknown): StreamErrorClass {
  if (error instanceof CursorClosedByServerError) return 'transient';
  if (error instanceof MongoServerError) {
    if (error.code === HISTORY_LOST || error.codeName === 'ChangeStreamHistoryLost') return 'history-lost';
    if (error.code === CAPPED_POSITION_LOST || error.codeName === 'CappedPositionLost') return 'history-lost';
    // Servers before 4.4 reported a vanished resume point as a generic error with this message.
    if (/resume (point|token) may no longer be in the oplog/i.test(error.message)) return 'history-lost';
    if (typeof error.code === 'number' && TRANSIENT_CODES.has(error.code)) return 'transient';
    if (error.hasErrorLabel('ResumableChangeStreamError') || error.hasErrorLabel('RetryableWriteError'))
      return 'transient';
    return 'fatal';
  }
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return 'transient';
  if (error instanceof MongoError && /(topology|connection|pool).*(closed|cleared)/i.test(error.message))
    return 'transient';
  return 'fatal';
}

export function errorReason(error: unknown): string {
  if (error instanceof MongoServerError) return error.codeName ?? `code-${String(error.code)}`;
  if (error instanceof Error) return error.name;
  return 'unknown';
}
