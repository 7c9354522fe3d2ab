import { expect } from 'chai';
import { loadConfigReport } from '../../../src/config/load.js';
import { BASE_ENV, configErrorFrom, configFrom } from './helpers.js';

describe('RELAY_KEY (state topics, issue 15 item 4)', () => {
  it('defaults to change-id, as the design requires', () => {
    expect(configFrom().relay.key).to.equal('change-id');
  });

  it('accepts document with the default partitioning and full documents', () => {
    expect(configFrom({ RELAY_KEY: 'document' }).relay.key).to.equal('document');
    expect(configFrom({ RELAY_KEY: 'document', RELAY_FULL_DOCUMENT: 'required' }).relay.key).to.equal(
      'document',
    );
  });

  it('refuses values other than change-id and document, naming the variable', () => {
    const error = configErrorFrom({ RELAY_KEY: 'documentKey' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_KEY']);
    expect(error.message).to.contain('change-id').and.to.contain('document');
  });

  it('refuses RELAY_KEY=document with RELAY_PARTITION_BY=change-id (compaction works per partition)', () => {
    const error = configErrorFrom({ RELAY_KEY: 'document', RELAY_PARTITION_BY: 'change-id' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_PARTITION_BY']);
    expect(error.message).to.contain('RELAY_KEY=document').and.to.contain('value was "change-id"');
  });

  it('refuses RELAY_KEY=document without full documents on updates (RELAY_FULL_DOCUMENT=default)', () => {
    const error = configErrorFrom({ RELAY_KEY: 'document', RELAY_FULL_DOCUMENT: 'default' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_FULL_DOCUMENT']);
    expect(error.message).to.contain('RELAY_KEY=document').and.to.contain('updateLookup');
  });

  it('allows both of those settings with the default key', () => {
    const config = configFrom({ RELAY_PARTITION_BY: 'change-id', RELAY_FULL_DOCUMENT: 'default' });
    expect(config.relay.key).to.equal('change-id');
  });

  it('warns when RELAY_OPERATION_TYPES leaves out delete (no tombstones would be written)', () => {
    const warnings = (env: Record<string, string>) =>
      loadConfigReport({ env: { ...BASE_ENV, ...env } }).warnings.map((w) => w.message);
    expect(warnings({ RELAY_KEY: 'document', RELAY_OPERATION_TYPES: 'insert,update' })).to.satisfy(
      (ws: string[]) => ws.some((w) => w.includes('tombstones')),
    );
    expect(warnings({ RELAY_KEY: 'document', RELAY_OPERATION_TYPES: 'insert,delete' })).to.deep.equal([]);
    expect(warnings({ RELAY_OPERATION_TYPES: 'insert,update' })).to.deep.equal([]);
  });
});
