import { expect } from 'chai';

import {
  HandlerTimeoutError,
  PermanentHandlerError,
  RetryableHandlerError,
} from '../../../src/consumer/errors.js';
import { classifyError, decideAfterFailure, type RetryLimits } from '../../../src/consumer/retryPolicy.js';

describe('consumer/retryPolicy', () => {
  describe('classifyError', () => {
    const allPermanent = (): 'permanent' => 'permanent';

    it('calls an error nobody recognises retryable (dead-lettering it could lose a change for good)', () => {
      expect(classifyError(new Error('ECONNRESET'), undefined)).to.equal('retryable');
      expect(classifyError('a string', undefined)).to.equal('retryable');
    });

    it("lets the helper's own classes win over the application's classifier", () => {
      expect(classifyError(new PermanentHandlerError('bad'), () => 'retryable')).to.equal('permanent');
      expect(classifyError(new RetryableHandlerError('429'), allPermanent)).to.equal('retryable');
      expect(classifyError(new HandlerTimeoutError(100), allPermanent)).to.equal('retryable');
    });

    it("follows the application's classifier otherwise", () => {
      const byStatus = (error: unknown) =>
        (error as { status?: number }).status === 400 ? 'permanent' : 'retryable';
      expect(classifyError(Object.assign(new Error(), { status: 400 }), byStatus)).to.equal('permanent');
      expect(classifyError(Object.assign(new Error(), { status: 503 }), byStatus)).to.equal('retryable');
    });

    it('treats a classifier that throws as "retryable"', () => {
      expect(
        classifyError(new Error(), () => {
          throw new Error('bug');
        }),
      ).to.equal('retryable');
    });
  });

  describe('decideAfterFailure', () => {
    const backoff = { initialDelayMs: 200, maxDelayMs: 60_000, multiplier: 2, jitter: 0.5 };
    const unlimited: RetryLimits = { attempts: Infinity, maxElapsedMs: Infinity };
    const half = () => 0.5;

    it('dead-letters a permanent error at once', () => {
      expect(decideAfterFailure('permanent', 1, 0, 0, unlimited, backoff, half)).to.deep.equal({
        action: 'dead-letter',
        because: 'permanent',
      });
    });

    it('retries a retryable error for ever by default, with capped jittered backoff', () => {
      expect(decideAfterFailure('retryable', 1, 0, 0, unlimited, backoff, half)).to.deep.equal({
        action: 'retry',
        delayMs: 150,
      });
      const after10000 = decideAfterFailure('retryable', 10_000, 0, 86_400_000, unlimited, backoff, half);
      expect(after10000).to.deep.equal({ action: 'retry', delayMs: 45_000 });
      expect(decideAfterFailure('retryable', 3, 0, 0, unlimited, backoff, () => 0)).to.deep.equal({
        action: 'retry',
        delayMs: 800,
      });
      expect(decideAfterFailure('retryable', 3, 0, 0, unlimited, backoff, () => 1)).to.deep.equal({
        action: 'retry',
        delayMs: 400,
      });
    });

    it('dead-letters when an explicit attempts limit is reached', () => {
      const limits = { attempts: 3, maxElapsedMs: Infinity };
      expect(decideAfterFailure('retryable', 2, 0, 0, limits, backoff, half).action).to.equal('retry');
      expect(decideAfterFailure('retryable', 3, 0, 0, limits, backoff, half)).to.deep.equal({
        action: 'dead-letter',
        because: 'attempts',
      });
    });

    it('dead-letters when the next try would come after an explicit time limit', () => {
      const limits = { attempts: Infinity, maxElapsedMs: 10_000 };
      expect(decideAfterFailure('retryable', 2, 1_000, 9_000, limits, backoff, () => 0).action).to.equal(
        'retry',
      );
      expect(decideAfterFailure('retryable', 2, 1_000, 10_900, limits, backoff, () => 0)).to.deep.equal({
        action: 'dead-letter',
        because: 'elapsed',
      });
    });
  });
});
