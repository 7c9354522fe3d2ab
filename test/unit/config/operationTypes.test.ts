import { expect } from 'chai';
import { configFrom, configErrorFrom } from './helpers.js';
import { loadConfigReport } from '../../../src/config/load.js';
import { BASE_ENV } from './helpers.js';

describe('RELAY_OPERATION_TYPES (issue 10.13)', () => {
  it('accepts MongoDB’s operation types', () => {
    const config = configFrom({
      RELAY_OPERATION_TYPES: 'insert, update,replace,delete,drop,rename,dropDatabase,invalidate',
    });
    expect([...(config.derived.operationTypes ?? [])]).to.have.members([
      'insert',
      'update',
      'replace',
      'delete',
      'drop',
      'rename',
      'dropDatabase',
      'invalidate',
    ]);
  });

  it('refuses misspelt types, naming each with the closest valid one', () => {
    const error = configErrorFrom({ RELAY_OPERATION_TYPES: 'inserts,updat,delete' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_OPERATION_TYPES']);
    expect(error.message).to.match(/"inserts" \(did you mean "insert"\?\)/);
    expect(error.message).to.match(/"updat" \(did you mean "update"\?\)/);
    expect(error.message).not.to.match(/"delete" \(/);
    expect(error.message).to.contain('value was "inserts,updat,delete"');
  });

  it('is case-sensitive, as MongoDB is', () => {
    expect(configErrorFrom({ RELAY_OPERATION_TYPES: 'Insert' }).message).to.match(/did you mean "insert"/);
  });

  it('knows the expanded-event types, and refuses a list of only those: the relay would publish nothing', () => {
    const error = configErrorFrom({ RELAY_OPERATION_TYPES: 'createIndexes,dropIndexes' });
    expect(error.message).to.match(/RELAY_OPERATION_TYPES.*showExpandedEvents/);
  });

  it('warns when expanded-event types are listed beside ordinary ones', () => {
    const { config, warnings } = loadConfigReport({
      env: {
        ...BASE_ENV,
        RELAY_OPERATION_TYPES:
          'insert,create,modify,shardCollection,reshardCollection,refineCollectionShardKey',
      },
    });
    expect(config.derived.operationTypes?.has('insert')).to.equal(true);
    expect(warnings.map((w) => w.variable)).to.include('RELAY_OPERATION_TYPES');
  });
});
