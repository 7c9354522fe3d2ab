/**
 * Counts the rejections of one async method of an object without changing what it does: the
 * rejection still reaches the caller. Lets the composition root count, e.g., failed checkpoint
 * writes without the checkpoint modules knowing about metrics.
 */
export function countFailures<T extends object, K extends keyof T>(
  target: T,
  method: K,
  onFailure: (error: unknown) => void,
): T {
  const original = target[method];
  if (typeof original !== 'function') throw new TypeError(`${String(method)} is not a method`);
  const fn = original as (...args: unknown[]) => Promise<unknown>;
  const wrapped = async function (this: T, ...args: unknown[]): Promise<unknown> {
    try {
      return await fn.apply(this, args);
    } catch (error) {
      onFailure(error);
      throw error;
    }
  };
  target[method] = wrapped as T[K];
  return target;
}
