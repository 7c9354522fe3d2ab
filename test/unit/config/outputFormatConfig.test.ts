import { expect } from 'chai';
import { configErrorFrom, configFrom } from './helpers.js';
import { recordOptions } from '../../../src/app/recordOptions.js';

describe('RELAY_OUTPUT_FORMAT (drop-in formats, issue 21 item 3)', () => {
  it("defaults to the relay's own record contract", () => {
    const config = configFrom();
    expect(config.relay.outputFormat).to.equal('relay');
    expect(recordOptions(config)).to.not.have.property('debezium');
  });

  it('debezium takes its logical name (topic.prefix) from KAFKA_TOPIC, and a run ID per process', () => {
    const config = configFrom({ RELAY_OUTPUT_FORMAT: 'debezium', KAFKA_TOPIC: 'dbserver1.{db}.{coll}' });
    const options = recordOptions(config);
    expect(options.output).to.equal('debezium');
    expect(options.debezium?.name).to.equal('dbserver1');
    expect(options.debezium?.runId).to.match(/^[0-9a-f-]{36}$/);
    expect(recordOptions(config).debezium?.runId).to.not.equal(options.debezium?.runId);
  });

  it('refuses debezium with a KAFKA_TOPIC that is not <prefix>.{db}.{coll}, naming the variable and value', () => {
    const error = configErrorFrom({ RELAY_OUTPUT_FORMAT: 'debezium', KAFKA_TOPIC: 'cdc.{coll}' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['KAFKA_TOPIC']);
    expect(error.message).to.contain('<prefix>.{db}.{coll}').and.to.contain('value was "cdc.{coll}"');
  });

  it('refuses RELAY_KEY=document with a drop-in format (the format defines the key)', () => {
    for (const format of ['debezium', 'mongo-kafka-connect']) {
      const error = configErrorFrom({ RELAY_OUTPUT_FORMAT: format, RELAY_KEY: 'document' });
      expect(
        error.problems.map((p) => p.variable),
        format,
      ).to.deep.equal(['RELAY_KEY']);
      expect(error.message).to.contain(`RELAY_OUTPUT_FORMAT=${format}`);
    }
  });

  it('refuses unknown formats, listing the allowed ones', () => {
    const error = configErrorFrom({ RELAY_OUTPUT_FORMAT: 'avro' });
    expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_OUTPUT_FORMAT']);
    expect(error.message).to.contain('relay, debezium, mongo-kafka-connect');
  });

  it('mongo-kafka-connect works with any topic template', () => {
    expect(
      configFrom({ RELAY_OUTPUT_FORMAT: 'mongo-kafka-connect', KAFKA_TOPIC: '{db}.{coll}' }).relay
        .outputFormat,
    ).to.equal('mongo-kafka-connect');
  });
});
