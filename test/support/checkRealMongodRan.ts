/**
 * CI check (used by .ci/run when MONGO_KIND=mongod): reads the JSON reports written by the testReport reporter and
 * fails when a test that only a real mongod can run was skipped or failed — so a run on which mongod silently did
 * not come up (or a capability probe said no) can never pass. Such tests say "real mongod only" in their names.
 *
 *   npx tsx test/support/checkRealMongodRan.ts <report.json>...
 */
import { readFileSync } from 'node:fs';
import type { ReportedTest } from './testReport.js';

export const REAL_MONGOD_ONLY = /real mongod only/i;

export function checkRealMongodRan(reports: { tests: ReportedTest[] }[]): {
  ran: string[];
  problems: string[];
} {
  const ran: string[] = [];
  const problems: string[] = [];
  for (const test of reports.flatMap((r) => r.tests)) {
    if (!REAL_MONGOD_ONLY.test(test.title)) continue;
    if (test.state === 'passed') ran.push(test.title);
    else problems.push(`${test.state === 'pending' ? 'skipped' : test.state}: ${test.title}`);
  }
  if (ran.length === 0 && problems.length === 0)
    problems.push('no test named "real mongod only" ran at all (were the reports written?)');
  return { ran, problems };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: checkRealMongodRan.ts <report.json>...');
    process.exit(2);
  }
  const reports = files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as { tests: ReportedTest[] });
  const { ran, problems } = checkRealMongodRan(reports);
  for (const title of ran) console.log(`real mongod only, ran: ${title}`);
  if (problems.length > 0) {
    for (const problem of problems) console.error(`real mongod only, ${problem}`);
    console.error('ci: tests that need a real mongod did not all run; failing the run');
    process.exit(1);
  }
}
