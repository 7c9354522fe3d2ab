/**
 * Handler calls under a deadline, for the calls of one chunk. Each call gets a signal that fires when
 * the caller's signal fires (stop, partition revoked) or when the call runs longer than `timeoutMs`
 * (reason HandlerTimeoutError); one timer and one AbortController serve all calls of the chunk (a
 * controller per call would cost more than a trivial handler).
 *
 * Invariant: `call()` settles at the latest `timeoutMs` after the call began, whether or not the handler
 * honours its signal; the helper never waits longer for a handler. After a timeout the next call gets a
 * fresh signal.
 */
import { HandlerTimeoutError } from './errors.js';

export class HandlerDeadline {
  private controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: { readonly reject: (error: Error) => void } | undefined;
  private readonly onParentAbort = (): void => this.controller.abort(this.parent.reason);

  constructor(
    private readonly parent: AbortSignal,
    private readonly timeoutMs: number,
  ) {
    if (parent.aborted) this.controller.abort(parent.reason);
    else parent.addEventListener('abort', this.onParentAbort, { once: true });
  }

  call<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.controller.signal.aborted && !this.parent.aborted) this.controller = new AbortController();
    const result = call(this.controller.signal);
    if (!Number.isFinite(this.timeoutMs)) return result;
    return new Promise<T>((resolve, reject) => {
      const current = { reject };
      this.running = current;
      this.arm();
      const done = (): void => {
        if (this.running === current) this.running = undefined;
      };
      result.then(
        (value) => {
          done();
          resolve(value);
        },
        (error: unknown) => {
          done();
          reject(error as Error);
        },
      );
    });
  }

  /** Stops the timer and lets go of the caller's signal. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.parent.removeEventListener('abort', this.onParentAbort);
  }

  private arm(): void {
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => this.expire(), this.timeoutMs);
    this.timer.unref();
  }

  private expire(): void {
    const current = this.running;
    if (!current) return; // fired between calls
    this.running = undefined;
    const error = new HandlerTimeoutError(this.timeoutMs);
    this.controller.abort(error);
    current.reject(error);
  }
}

/** One call under its own deadline (see HandlerDeadline). */
export async function callWithTimeout<T>(
  parent: AbortSignal,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new HandlerDeadline(parent, timeoutMs);
  try {
    return await deadline.call(call);
  } finally {
    deadline.close();
  }
}
