/**
 * A mocha reporter for CI: the usual spec output, plus, when TEST_REPORT_FILE is set, a JSON file listing every
 * test with its state (passed, failed, pending) and full title. `test/support/checkRealMongodRan.ts` reads it to
 * fail a run in which a test that needs a real mongod was skipped (e.g. mongod silently unavailable).
 *
 *   npx mocha --reporter test/support/testReport.ts ...
 */
import { writeFileSync } from 'node:fs';
import Mocha, { type Runner, type Test } from 'mocha';

export const REPORT_FILE_ENV = 'TEST_REPORT_FILE';

export interface ReportedTest {
  title: string;
  file: string | undefined;
  state: 'passed' | 'failed' | 'pending';
}

export default class TestReport extends Mocha.reporters.Spec {
  constructor(runner: Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const tests: ReportedTest[] = [];
    const add = (state: ReportedTest['state']) => (test: Test) =>
      tests.push({ title: test.fullTitle(), file: test.file, state });
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, add('passed'));
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, add('failed'));
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, add('pending'));
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const file = process.env[REPORT_FILE_ENV];
      if (file) writeFileSync(file, `${JSON.stringify({ tests }, null, 2)}\n`);
    });
  }
}
