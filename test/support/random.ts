/**
 * Reproducible randomness for tests: every kill point, outage length and workload choice comes from a seeded
 * generator, and the seed is printed with the result. `TEST_SEED=<n>` makes every scenario use that seed, so a
 * failing run is replayed with the seed from its output line (e.g. `TEST_SEED=123 npm run test:faults -- --grep
 * relay-kill`).
 */
import { randomInt } from 'node:crypto';

export const SEED_ENV = 'TEST_SEED';

/** The seed to use: TEST_SEED when set, else a fresh one (printed by the caller). */
export function chooseSeed(): number {
  const given = process.env[SEED_ENV];
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`${SEED_ENV}=${given} is not a seed (0..2^53)`);
    return seed;
  }
  return randomInt(0, 2 ** 31);
}

/** A small, fast, seedable generator (mulberry32): the same seed gives the same sequence on every machine. */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** In [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** In [min, max). */
  between(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A seed for a dependent generator (e.g. the workload writer), drawn from this one. */
  derive(): number {
    return Math.floor(this.next() * 2 ** 31);
  }
}
