import { expect } from 'chai';

import { ConsumerStoppedError, HandlerTimeoutError } from '../../../src/consumer/errors.js';
import { HandlerDeadline, callWithTimeout } from '../../../src/consumer/handlerCall.js';

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('consumer/handlerCall callWithTimeout', () => {
  it('returns what the call returns', async () => {
    expect(await callWithTimeout(new AbortController().signal, 1_000, async () => 'ok')).to.equal('ok');
  });

  it("aborts the call's signal with HandlerTimeoutError after the timeout and rejects with it", async () => {
    let seen: unknown;
    const error = await rejection(
      callWithTimeout(new AbortController().signal, 20, (signal) => {
        signal.addEventListener('abort', () => (seen = signal.reason));
        return new Promise(() => undefined);
      }),
    );
    expect(error).to.be.instanceOf(HandlerTimeoutError);
    expect(seen).to.equal(error);
  });

  it('settles at the timeout even when the call ignores its signal', async () => {
    const error = await rejection(
      callWithTimeout(new AbortController().signal, 20, () => new Promise(() => undefined)),
    );
    expect(error).to.be.instanceOf(HandlerTimeoutError);
  });

  it("passes the parent's abort (stop, revoke) on to the call, and waits for the call to settle", async () => {
    const parent = new AbortController();
    const result = callWithTimeout(parent.signal, 5_000, (signal) => {
      return new Promise<string>((resolve) =>
        signal.addEventListener('abort', () =>
          setTimeout(() => resolve(`finished after ${String(signal.reason)}`), 20),
        ),
      );
    });
    parent.abort(new ConsumerStoppedError());
    expect(await result).to.equal('finished after ConsumerStoppedError: The change consumer is stopping');
  });

  it('aborts the call at once when the parent was aborted before', async () => {
    const parent = new AbortController();
    parent.abort(new ConsumerStoppedError());
    const aborted = await callWithTimeout(parent.signal, 5_000, async (signal) => signal.aborted);
    expect(aborted).to.equal(true);
  });

  describe('HandlerDeadline (one timer for the calls of a chunk)', () => {
    it('times each call from its own start, and gives the call after a timeout a fresh signal', async () => {
      const deadline = new HandlerDeadline(new AbortController().signal, 40);
      try {
        const signals: AbortSignal[] = [];
        for (let i = 0; i < 3; i++) {
          await deadline.call(async (signal) => {
            signals.push(signal);
            await new Promise((resolve) => setTimeout(resolve, 25)); // 75 ms in all, each under 40
          });
        }
        expect(signals.every((signal) => !signal.aborted)).to.equal(true);
        const timedOut = await rejection(
          deadline.call((signal) => {
            signals.push(signal);
            return new Promise(() => undefined);
          }),
        );
        expect(timedOut).to.be.instanceOf(HandlerTimeoutError);
        expect(signals.at(-1)?.aborted).to.equal(true);
        const next = await deadline.call(async (signal) => signal.aborted);
        expect(next, 'a fresh signal after the timeout').to.equal(false);
      } finally {
        deadline.close();
      }
    });

    it('does not fire between calls', async () => {
      const deadline = new HandlerDeadline(new AbortController().signal, 10);
      try {
        await deadline.call(async () => undefined);
        await new Promise((resolve) => setTimeout(resolve, 30));
        expect(await deadline.call(async (signal) => signal.aborted)).to.equal(false);
      } finally {
        deadline.close();
      }
    });
  });
});
