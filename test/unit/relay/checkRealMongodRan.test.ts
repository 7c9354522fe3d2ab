import { expect } from 'chai';
import { checkRealMongodRan } from '../../support/checkRealMongodRan.js';
import type { ReportedTest } from '../../support/testReport.js';

const test = (title: string, state: ReportedTest['state']): ReportedTest => ({ title, file: 'x', state });

describe('checkRealMongodRan (the CI check that a real mongod ran its tests)', () => {
  it('passes when every "real mongod only" test passed', () => {
    const result = checkRealMongodRan([
      { tests: [test('a (real mongod only: x)', 'passed'), test('other', 'pending')] },
    ]);
    expect(result.problems).to.deep.equal([]);
    expect(result.ran).to.deep.equal(['a (real mongod only: x)']);
  });

  it('fails on a skipped or failed one, naming it', () => {
    const result = checkRealMongodRan([
      { tests: [test('a (real mongod only: x)', 'pending')] },
      { tests: [test('b (Real Mongod Only)', 'failed')] },
    ]);
    expect(result.problems).to.deep.equal([
      'skipped: a (real mongod only: x)',
      'failed: b (Real Mongod Only)',
    ]);
  });

  it('fails when no such test is in the reports at all', () => {
    expect(checkRealMongodRan([{ tests: [test('other', 'passed')] }]).problems).to.have.length(1);
  });
});
