import { expect } from 'chai';

import {
  backoffDelay,
  backoffSchedule,
  retryUntilSuccess,
  sleep,
  type BackoffPolicy,
} from '../../../src/consumer/backoff.js';
import { ConsumerStoppedError } from '../../../src/consumer/errors.js';

describe('consumer/backoff', () => {
  const policy: BackoffPolicy = { initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0 };

  describe('backoffSchedule', () => {
    it('doubles from the initial delay and caps at the maximum', () => {
      expect(backoffSchedule(policy, 7)).to.deep.equal([100, 200, 400, 800, 1_000, 1_000]);
    });

    it('has one delay fewer than attempts (no wait before the first call)', () => {
      expect(backoffSchedule(policy, 1)).to.deep.equal([]);
      expect(backoffSchedule(policy, 5)).to.have.length(4);
    });

    it('follows the multiplier', () => {
      expect(backoffSchedule({ ...policy, multiplier: 3, maxDelayMs: 10_000 }, 4)).to.deep.equal([
        100, 300, 900,
      ]);
    });
  });

  describe('backoffDelay', () => {
    it('reduces a delay by at most the jitter fraction', () => {
      const jittered: BackoffPolicy = { ...policy, jitter: 0.5 };
      expect(backoffDelay(jittered, 3, () => 0)).to.equal(400);
      expect(backoffDelay(jittered, 3, () => 1)).to.equal(200);
      expect(backoffDelay(jittered, 3, () => 0.5)).to.equal(300);
    });

    it('rejects retry numbers below 1', () => {
      expect(() => backoffDelay(policy, 0)).to.throw(RangeError);
    });
  });

  describe('sleep', () => {
    it('ends early with ConsumerStoppedError when the signal is aborted', async () => {
      const controller = new AbortController();
      const started = Date.now();
      const waiting = sleep(10_000, controller.signal);
      setTimeout(() => controller.abort(), 20);
      const error = await waiting.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(ConsumerStoppedError);
      expect(Date.now() - started).to.be.lessThan(1_000);
    });
  });

  describe('retryUntilSuccess', () => {
    const fast: BackoffPolicy = { initialDelayMs: 1, maxDelayMs: 2, multiplier: 2, jitter: 0 };

    it('retries until the operation succeeds, reporting each failure', async () => {
      let calls = 0;
      const failures: number[] = [];
      const result = await retryUntilSuccess(
        async () => {
          calls++;
          if (calls < 4) throw new Error(`boom ${calls}`);
          return 'done';
        },
        fast,
        new AbortController().signal,
        (_error, failureCount) => failures.push(failureCount),
      );
      expect(result).to.equal('done');
      expect(failures).to.deep.equal([1, 2, 3]);
    });

    it('still makes the first try after a stop, but does not wait for another', async () => {
      const controller = new AbortController();
      controller.abort();
      expect(
        await retryUntilSuccess(
          async () => 'first',
          fast,
          controller.signal,
          () => undefined,
        ),
      ).to.equal('first');
      const error = await retryUntilSuccess(
        async () => {
          throw new Error('down');
        },
        fast,
        controller.signal,
        () => undefined,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(ConsumerStoppedError);
    });
  });
});
