/**
 * The project's address is written once, as `repository.url` in package.json (what npm shows, and
 * what a fork or an internal mirror changes). Every other place that names it — the alert rules'
 * runbook links, the image's `org.opencontainers.image.source` default, the README — must carry
 * that same value, so changing it is one edit plus the places this test then names.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPOSITORY_URL } from '../../support/deploy-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// A URL that names this project's repository (any owner): github.com/<owner>/mongo-kafka-relay.
const PROJECT_URL = /https?:\/\/github\.com\/[\w.-]+\/mongo-kafka-relay\b/g;

function trackedTextFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return out
    .split('\0')
    .filter((f) => f !== '' && !f.startsWith('test/fixtures/') && f !== 'package-lock.json')
    .filter((f) => /\.(ts|js|json|ya?ml|md)$|(^|\/)Dockerfile$/.test(f));
}

describe('the repository URL', () => {
  it('is set once in package.json (repository.url)', () => {
    expect(REPOSITORY_URL).to.match(/^https:\/\/\S+[^/]$/);
  });

  it('is the only project address any tracked file carries', () => {
    const strays: string[] = [];
    let uses = 0;
    for (const file of trackedTextFiles()) {
      let text: string;
      try {
        text = readFileSync(path.join(ROOT, file), 'utf8');
      } catch {
        continue; // deleted in the work tree but still in the index
      }
      for (const match of text.matchAll(PROJECT_URL)) {
        uses++;
        if (match[0] !== REPOSITORY_URL) strays.push(`${file}: ${match[0]}`);
      }
    }
    expect(strays, `differ from package.json repository.url ${REPOSITORY_URL}`).to.deep.equal([]);
    expect(uses, 'the alert rules and the Dockerfile name it').to.be.greaterThan(2);
  });

  it('is the image source label default in the Dockerfile', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).to.contain(`ARG SOURCE=${REPOSITORY_URL}\n`);
  });
});
