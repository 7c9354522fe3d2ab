import { expect } from 'chai';
import { shutdownBudget } from '../../../../src/app/shutdownBudget.js';

describe('shutdown budget', () => {
  const cfg = (shutdownTimeoutMs: number, timeoutMs: number) =>
    ({ relay: { shutdownTimeoutMs }, checkpoint: { timeoutMs } }) as Parameters<typeof shutdownBudget>[1];

  it('ends everything before the stop deadline, keeping reserves for the final checkpoint write and the teardown', () => {
    // 9 s budget: 750 ms teardown, 2 s for the final checkpoint write.
    expect(shutdownBudget(10_000, cfg(9_000, 2_000), false, 1_000)).to.deep.equal({
      drainUntil: 7_250,
      checkpointUntil: 9_250,
    });
  });

  it('never reserves more than a third of the budget for the checkpoint, a tenth for the teardown', () => {
    expect(shutdownBudget(4_000, cfg(3_000, 5_000), false, 1_000)).to.deep.equal({
      drainUntil: 2_700,
      checkpointUntil: 3_700,
    });
  });

  it('after a lost lease, waits for nothing', () => {
    expect(shutdownBudget(10_000, cfg(9_000, 2_000), true, 1_000)).to.deep.equal({
      drainUntil: 1_000,
      checkpointUntil: 1_000,
    });
  });
});
