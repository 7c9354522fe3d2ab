/**
 * How a graceful stop spends RELAY_SHUTDOWN_TIMEOUT_MS, counted from the stop request on the monotonic
 * clock, so the process exits within it (code 0) whatever hangs — MongoDB unreachable, a produce
 * request stuck — and keeps the last safe checkpoint:
 *  - draining in-flight events and stopping the sink get everything but two reserves;
 *  - the checkpoint reserve (one checkpoint operation timeout, at most a third of the budget) is for
 *    the final checkpoint write, so acknowledged events are persisted even when draining used its
 *    whole share;
 *  - the teardown reserve (a tenth of the budget, at most 750 ms) is for releasing the lease, closing
 *    the clients and letting the process exit;
 *  - after a lost lease nothing is drained or written (another relay owns the stream).
 */
import type { RelayConfig } from '../config/settings.js';

export interface ShutdownBudget {
  /** Until when (performance.now()) to wait for in-flight events and the sink. */
  drainUntil: number;
  /** Until when to wait for the final checkpoint write. */
  checkpointUntil: number;
}

export function shutdownBudget(
  stopDeadline: number | null,
  config: Pick<RelayConfig, 'relay' | 'checkpoint'>,
  leaseLost: boolean,
  now: number = performance.now(),
): ShutdownBudget {
  if (leaseLost) return { drainUntil: now, checkpointUntil: now };
  const total = config.relay.shutdownTimeoutMs;
  const end = (stopDeadline ?? now + total) - Math.min(750, Math.floor(total / 10));
  const reserve = Math.min(config.checkpoint.timeoutMs, Math.floor(total / 3));
  return { drainUntil: Math.max(now, end - reserve), checkpointUntil: Math.max(now, end) };
}
