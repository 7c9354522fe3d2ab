import { ConsumerStoppedError } from './errors.js';

/** Exponential backoff: the n-th retry waits `min(maxDelayMs, initialDelayMs * multiplier^(n-1))`. */
export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /**
   * 0..1: each delay is reduced by a random share of up to this fraction, so that many partitions
   * retrying the same outage do not retry in lockstep. 0 (default) gives an exact schedule.
   */
  readonly jitter: number;
}

/** Delay in ms before retry number `retry` (1 = the first retry, i.e. the second attempt). */
export function backoffDelay(
  policy: BackoffPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(retry) || retry < 1)
    throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  const exponential = policy.initialDelayMs * Math.pow(policy.multiplier, retry - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  if (policy.jitter <= 0) return Math.round(capped);
  return Math.round(capped * (1 - policy.jitter * random()));
}

/** The delays before each retry when a handler is called at most `attempts` times. */
export function backoffSchedule(policy: BackoffPolicy, attempts: number, random?: () => number): number[] {
  const delays: number[] = [];
  for (let retry = 1; retry < attempts; retry++) delays.push(backoffDelay(policy, retry, random));
  return delays;
}

/** Waits `ms`; rejects with ConsumerStoppedError as soon as `signal` is aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new ConsumerStoppedError());
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new ConsumerStoppedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `operation` until it succeeds, waiting by `policy` between tries. Used for infrastructure steps
 * (seen collection, dead-letter publish) whose failure must make the partition wait, never skip a record.
 * The first try always runs (so the record in hand is finished during a stop); once `signal` is aborted,
 * a failure ends the loop with ConsumerStoppedError instead of waiting for another try.
 */
export async function retryUntilSuccess<T>(
  operation: () => Promise<T>,
  policy: BackoffPolicy,
  signal: AbortSignal,
  onFailure: (error: unknown, failures: number, nextDelayMs: number) => void,
): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ConsumerStoppedError) throw error;
      const delay = backoffDelay(policy, Math.min(failures, 64));
      onFailure(error, failures, delay);
      await sleep(delay, signal);
    }
  }
}
