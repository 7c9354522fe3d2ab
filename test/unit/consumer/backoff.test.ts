import { expect } from 'chai';

import { backoffDelay, backoffSchedule, type BackoffPolicy } from '../../../src/consumer/backoff.js';

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

    it('stays at the cap for any number of retries (no overflow to Infinity or NaN)', () => {
      expect(backoffDelay(policy, 10_000)).to.equal(1_000);
    });
  });
});
