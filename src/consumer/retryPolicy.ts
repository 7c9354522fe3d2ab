/**
 * What happens after a handler failure: retry later (the partition waits, order is kept) or dead-letter.
 * Pure. The split follows kafkajs and Debezium: *which* errors are retryable (the classifier) is decided
 * apart from *how long* to retry (the limits); by default only a permanent error ends in the dead-letter
 * topic, and a retryable or unknown one is retried for as long as it takes.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { HandlerTimeoutError, PermanentHandlerError, RetryableHandlerError } from './errors.js';

export type ErrorKind = 'retryable' | 'permanent';

/** Decides whether an error thrown by a handler is worth retrying. */
export type ErrorClassifier = (error: unknown) => ErrorKind;

/**
 * The helper's own error classes decide first (PermanentHandlerError: permanent; RetryableHandlerError
 * and HandlerTimeoutError: retryable); then the application's classifier; an error nobody recognises is
 * retryable, because dead-lettering a change that a retry would have applied loses it for good.
 * A classifier that throws counts as "retryable" (and is the application's bug to fix).
 */
export function classifyError(error: unknown, classifier: ErrorClassifier | undefined): ErrorKind {
  if (error instanceof PermanentHandlerError) return 'permanent';
  if (error instanceof RetryableHandlerError || error instanceof HandlerTimeoutError) return 'retryable';
  if (!classifier) return 'retryable';
  try {
    return classifier(error) === 'permanent' ? 'permanent' : 'retryable';
  } catch {
    return 'retryable';
  }
}

export interface RetryLimits {
  /** Most handler calls for one record (Infinity: no limit). */
  readonly attempts: number;
  /** Longest time from a record's first failure to giving up on it (Infinity: no limit). */
  readonly maxElapsedMs: number;
}

export type RetryDecision =
  | { readonly action: 'retry'; readonly delayMs: number }
  | { readonly action: 'dead-letter'; readonly because: 'permanent' | 'attempts' | 'elapsed' };

/**
 * After call number `attempt` failed with an error of `kind`: when, if ever, to call again.
 * `firstFailureAt` is when the first call for this record failed.
 */
export function decideAfterFailure(
  kind: ErrorKind,
  attempt: number,
  firstFailureAt: number,
  now: number,
  limits: RetryLimits,
  backoff: BackoffPolicy,
  random: () => number = Math.random,
): RetryDecision {
  if (kind === 'permanent') return { action: 'dead-letter', because: 'permanent' };
  if (attempt >= limits.attempts) return { action: 'dead-letter', because: 'attempts' };
  const delayMs = backoffDelay(backoff, attempt, random);
  if (now - firstFailureAt + delayMs > limits.maxElapsedMs)
    return { action: 'dead-letter', because: 'elapsed' };
  return { action: 'retry', delayMs };
}
