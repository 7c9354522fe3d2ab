/**
 * One handler call under a deadline. The call gets its own signal, aborted when the caller's signal
 * fires (stop, partition revoked) or when `timeoutMs` passes (HandlerTimeoutError).
 *
 * Invariant: the returned promise settles at the latest `timeoutMs` after the call began, whether or not
 * the handler honours its signal; the helper never waits longer for a handler.
 */
import { HandlerTimeoutError } from './errors.js';

export async function callWithTimeout<T>(
  parent: AbortSignal,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const running = call(controller.signal);
    // The call may settle after the deadline: its late rejection is nobody's to handle.
    running.catch(() => undefined);
    if (!Number.isFinite(timeoutMs)) return await running;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new HandlerTimeoutError(timeoutMs);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParentAbort);
  }
}
