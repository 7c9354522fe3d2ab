/**
 * Mocha root hooks (.mocharc.json `require`). Starts Kafka + MongoDB once per run, but only when
 * the run contains a test that needs them, so `npm run test:unit` stays server-free.
 *
 * Decision (RELAY_TEST_SERVICES): `always`, `never`, or `auto` (default) = start if any loaded
 * test file lives under test/integration/ or test/process/. The file list comes from the root
 * suite itself, so it is right for --spec, globs, --config and editor runners alike.
 */
import path from 'node:path';
import type { Suite } from 'mocha';
import { setUpServices, tearDownServices } from './services.js';

const SERVER_DIRS = [
  `${path.sep}test${path.sep}integration${path.sep}`,
  `${path.sep}test${path.sep}process${path.sep}`,
  `${path.sep}test${path.sep}faults${path.sep}`,
];

function files(suite: Suite, acc = new Set<string>()): Set<string> {
  if (suite.file) acc.add(suite.file);
  for (const t of suite.tests) if (t.file) acc.add(t.file);
  for (const s of suite.suites) files(s, acc);
  return acc;
}

function anyFailed(suite: Suite): boolean {
  return suite.tests.some((t) => t.state === 'failed') || suite.suites.some(anyFailed);
}

function needsServices(root: Suite): boolean {
  const mode = process.env.RELAY_TEST_SERVICES ?? 'auto';
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return [...files(root)].some((f) => SERVER_DIRS.some((d) => path.resolve(f).includes(d)));
}

const log = (l: string): void => console.log(`[test services] ${l}`);
let started = false;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    const root = this.test?.parent;
    if (!root || !needsServices(root)) return;
    // Cold start may download the Kafka jars (~45 MB) once; warm start is a few seconds.
    this.timeout(300_000);
    started = true;
    await setUpServices(log);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    if (!started) return;
    this.timeout(120_000);
    const root = this.test?.parent;
    const kept = await tearDownServices(root ? anyFailed(root) : false);
    if (kept) log(`kept ${path.relative(process.cwd(), kept)} (broker/mongod logs) because a test failed`);
  },
};
