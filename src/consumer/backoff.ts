/**
 * Capped exponential backoff with jitter. Pure: the caller passes the randomness.
 * The n-th retry waits `min(maxDelayMs, initialDelayMs * multiplier^(n-1))`, reduced by a random share
 * of up to `jitter` of it, so that many partitions retrying one outage do not retry in lockstep.
 */
export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /** 0..1: each delay is reduced by a random share of up to this fraction. 0 gives an exact schedule. */
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
  // Past ~64 doublings every realistic policy sits at its cap; the exponent stays finite.
  const exponential = policy.initialDelayMs * Math.pow(policy.multiplier, Math.min(retry, 64) - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  if (policy.jitter <= 0) return Math.round(capped);
  return Math.round(capped * (1 - policy.jitter * random()));
}

/** The delays before each retry when a call is made at most `attempts` times. */
export function backoffSchedule(policy: BackoffPolicy, attempts: number, random?: () => number): number[] {
  const delays: number[] = [];
  for (let retry = 1; retry < attempts; retry++) delays.push(backoffDelay(policy, retry, random));
  return delays;
}
