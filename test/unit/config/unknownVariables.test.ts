import { expect } from 'chai';
import { loadConfigReport } from '../../../src/config/load.js';
import { BASE_ENV } from './helpers.js';

function warningsFor(extra: Record<string, string>) {
  return loadConfigReport({ env: { ...BASE_ENV, ...extra } }).warnings;
}

describe('unknown RELAY_*, KAFKA_*, METRICS_* variables (issue 10.14)', () => {
  for (const [misspelt, meant] of [
    ['RELAY_WACTH', 'RELAY_WATCH'],
    ['RELAY_CHECKPOINT_MDOE', 'RELAY_CHECKPOINT_MODE'],
    ['KAFKA_BROKER', 'KAFKA_BROKERS'],
    ['KAFKA_SASL_PASSWD', 'KAFKA_SASL_PASSWORD'],
    ['METRICS_PROT', 'METRICS_PORT'],
  ] as const) {
    it(`warns about ${misspelt}, suggesting ${meant}`, () => {
      const warnings = warningsFor({ [misspelt]: 'x' });
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include({ variable: misspelt, suggestion: meant });
      expect(warnings[0]!.message).to.contain(`did you mean ${meant}?`);
    });
  }

  it('never shows the value of the unknown variable (it may be a secret)', () => {
    const [warning] = warningsFor({ KAFKA_SASL_PASWORD: 'TopSecret99' });
    expect(JSON.stringify(warning)).not.to.contain('TopSecret99');
  });

  it('says so without a suggestion when nothing is close', () => {
    const [warning] = warningsFor({ RELAY_SOMETHING_ELSE_ENTIRELY: '1' });
    expect(warning?.suggestion).to.equal(undefined);
    expect(warning?.message).to.contain(
      'RELAY_SOMETHING_ELSE_ENTIRELY is not a setting of mongo-kafka-relay',
    );
  });

  it('ignores known settings, other prefixes, Kafka tooling and Kubernetes service links', () => {
    expect(
      warningsFor({
        RELAY_WATCH: 'shop.orders',
        LOG_LEVEL: 'info',
        HOME: '/root',
        KAFKA_HEAP_OPTS: '-Xmx1G',
        KAFKA_OPTS: '',
        KAFKA_SERVICE_HOST: '10.0.0.1',
        KAFKA_SERVICE_PORT: '9092',
        KAFKA_SERVICE_PORT_BROKER: '9092',
        KAFKA_PORT: 'tcp://10.0.0.1:9092',
        KAFKA_PORT_9092_TCP: 'tcp://10.0.0.1:9092',
        KAFKA_PORT_9092_TCP_ADDR: '10.0.0.1',
        KAFKA_PORT_9092_TCP_PORT: '9092',
        KAFKA_PORT_9092_TCP_PROTO: 'tcp',
        RELAY_METRICS_SERVICE_HOST: '10.0.0.2',
      }),
    ).to.deep.equal([]);
  });
});
