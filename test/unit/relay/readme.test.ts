import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configReferenceMarkdown } from '../../../src/config/reference.js';

const README = readFileSync(path.resolve(import.meta.dirname, '../../../README.md'), 'utf8');

describe('README', () => {
  it('holds the configuration reference generated from the schema (npm run docs:config)', () => {
    const section = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(
      README,
    )?.[1];
    expect(section?.trim()).to.equal(configReferenceMarkdown().trim());
  });

  it('gives the two quickstart commands, the second being the CI test command', () => {
    expect(README).to.contain('npm ci && npm run dev');
    expect(README).to.match(/^npm test\s/m);
    // CI runs that command itself (inside its timing wrapper, with only a reporter added after `--`).
    expect(readFileSync(path.resolve(import.meta.dirname, '../../../.ci/run'), 'utf8')).to.match(
      /^(?:.*\s)?npm test(?: -- [^\n]*)?$/m,
    );
  });
});
