import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { CHECKPOINT_MODES } from '../../../src/config/schema.js';

const base = {
  MONGODB_URI: 'mongodb://127.0.0.1:1/',
  RELAY_WATCH: 'shop.orders',
  KAFKA_BROKERS: '127.0.0.1:9',
};

describe('RELAY_CHECKPOINT_MODE', () => {
  it('defaults to continuous (group commit)', () => {
    expect(loadConfig({ env: base }).checkpoint.mode).to.equal('continuous');
  });

  it('lists the canonical modes, in the order the README documents them', () => {
    expect(CHECKPOINT_MODES).to.deep.equal(['continuous', 'serial', 'batched']);
  });

  it('accepts every canonical mode as it is', () => {
    for (const mode of CHECKPOINT_MODES)
      expect(loadConfig({ env: { ...base, RELAY_CHECKPOINT_MODE: mode } }).checkpoint.mode).to.equal(mode);
  });

  it('keeps "strict" working as the former name of serial', () => {
    expect(loadConfig({ env: { ...base, RELAY_CHECKPOINT_MODE: 'strict' } }).checkpoint.mode).to.equal(
      'serial',
    );
  });

  it('refuses anything else, naming the variable, the value and what is allowed', () => {
    expect(() => loadConfig({ env: { ...base, RELAY_CHECKPOINT_MODE: 'lazy' } }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(
        /RELAY_CHECKPOINT_MODE \(checkpoint\.mode\): must be one of: continuous, serial, batched.*"lazy"/,
      );
  });

  it('takes RELAY_MAX_IN_FLIGHT_BYTES and RELAY_READER_THREAD', () => {
    const c = loadConfig({
      env: { ...base, RELAY_MAX_IN_FLIGHT_BYTES: '1048576', RELAY_READER_THREAD: 'false' },
    });
    expect(c.relay.maxInFlightBytes).to.equal(1048576);
    expect(c.relay.readerThread).to.equal(false);
    expect(() => loadConfig({ env: { ...base, RELAY_MAX_IN_FLIGHT_BYTES: '0' } })).to.throw(
      /RELAY_MAX_IN_FLIGHT_BYTES/,
    );
  });
});
