import { expect } from 'chai';
import * as formats from '../../../src/config/formats.js';
import { schemaLeaves } from '../../../src/config/load.js';
import { configFrom, configErrorFrom, tempFile } from './helpers.js';

describe('boolean settings (issue 10.12)', () => {
  const cases: [string, boolean][] = [
    ['true', true],
    ['false', false],
    ['TRUE', true],
    ['False', false],
    ['1', true],
    ['0', false],
    ['yes', true],
    ['no', false],
  ];
  for (const [text, meaning] of cases) {
    it(`reads KAFKA_SSL=${text} as ${meaning}`, () => {
      expect(configFrom({ KAFKA_SSL: text }).kafka.ssl).to.equal(meaning);
    });
  }

  it('reads RELAY_ALLOW_WATCH_CHANGE=no and KAFKA_CREATE_TOPICS=0 as false', () => {
    const config = configFrom({ RELAY_ALLOW_WATCH_CHANGE: 'no', KAFKA_CREATE_TOPICS: '0' });
    expect(config.relay.allowWatchChange).to.equal(false);
    expect(config.kafka.createTopics).to.equal(false);
  });

  for (const text of ['maybe', 'on', 'ture', '', '2', 'yes please']) {
    it(`refuses KAFKA_SSL=${JSON.stringify(text)}, naming the variable, the value and what is allowed`, () => {
      const error = configErrorFrom({ KAFKA_SSL: text });
      expect(error.message).to.match(/KAFKA_SSL \(kafka\.ssl\): must be true or false/);
      expect(error.message).to.contain(`value was ${JSON.stringify(text)}`);
    });
  }

  it('reads a config file the same way: "no" is false, YAML booleans stay booleans, others are refused', () => {
    const ok = configFrom({}, tempFile('ok.yaml', 'kafka:\n  ssl: "no"\n  createTopics: false\n'));
    expect(ok.kafka.ssl).to.equal(false);
    expect(ok.kafka.createTopics).to.equal(false);
    const error = configErrorFrom({}, tempFile('bad.yaml', 'relay:\n  allowWatchChange: sometimes\n'));
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_ALLOW_WATCH_CHANGE']);
    expect(error.message).to.contain('value was "sometimes"');
  });

  it('every boolean setting uses the strict boolean format', () => {
    const booleans = [...schemaLeaves()].filter(([, leaf]) => typeof leaf.default === 'boolean');
    expect(booleans.length).to.be.greaterThan(0);
    for (const [key, leaf] of booleans) expect(leaf.format, key).to.equal(formats.strictBoolean);
  });
});
