/** `snapshot --cancel` withdraws the whole request: targets beside it are a usage error (issue 20 item 5a). */
import { expect } from 'chai';
import { RelayExit } from '../../../src/app/errors.js';
import { ExitCode } from '../../../src/app/exitCodes.js';
import { refuseCancelWithTargets } from '../../../src/cli/snapshotCancel.js';

describe('snapshot --cancel: usage', () => {
  it('accepts no targets', () => {
    expect(() => refuseCancelWithTargets([])).not.to.throw();
  });

  it('refuses targets with the usage exit code, saying what to run instead', () => {
    let caught: unknown;
    try {
      refuseCancelWithTargets(['shop.orders']);
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(RelayExit);
    const exit = caught as RelayExit;
    expect(exit.exitCode).to.equal(ExitCode.usage);
    expect(exit.message).to.match(/--cancel takes no targets \(got shop\.orders\)/);
    expect(exit.message).to.contain('`mongo-kafka-relay snapshot --cancel` alone');
  });
});
