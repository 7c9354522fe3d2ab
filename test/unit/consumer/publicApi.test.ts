import { readdirSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import * as consumer from '../../../src/consumer/index.js';
import { REPO_ROOT } from '../../support/relayProcess.js';

describe('mongo-kafka-relay/consumer public API', () => {
  it('exports the documented API only (internals are no semver promise)', () => {
    expect(Object.keys(consumer).sort()).to.deep.equal(
      [
        'ChangeConsumer',
        'ChangeConsumerConfigError',
        'ConsumerCrashedError',
        'ConsumerMetricName',
        'DeadLetterHeader',
        'DeadLetterTopicMissingError',
        'HandlerTimeoutError',
        'PermanentHandlerError',
        'RecordHeader',
        'RetentionExceedsTtlError',
        'RetryableHandlerError',
        'TransactionsUnsupportedError',
        'TtlIndexMismatchError',
        'TtlIndexUpdateError',
        'createChangeConsumer',
        'redriveDeadLetters',
      ].sort(),
    );
  });

  it('names its files in camelCase, like the rest of src/', () => {
    const files = readdirSync(path.join(REPO_ROOT, 'src/consumer'));
    expect(files.filter((file) => !/^[a-z][a-zA-Z0-9]*\.ts$/.test(file))).to.deep.equal([]);
  });
});
