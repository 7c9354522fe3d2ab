/**
 * Polling instead of fixed sleeps: tests wait for a condition, bounded by a timeout that names
 * what was awaited, so a failure says what never happened rather than "timeout of 120000ms".
 */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is awaited, for the error message (a function is evaluated at timeout, e.g. to show counts). */
  message?: string | (() => string);
}

/**
 * Resolves with the first truthy value `predicate` returns; throws after `timeoutMs`.
 * A predicate that throws is treated as "not yet" (its last error is shown on timeout).
 */
export async function waitFor<T>(
  predicate: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 10_000, intervalMs = 50, message = 'condition' }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = typeof message === 'function' ? message() : message;
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`waitFor timed out after ${timeoutMs} ms: ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
