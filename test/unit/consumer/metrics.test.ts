import { expect } from 'chai';
import { Registry } from 'prom-client';

import { ConsumerMetricName, ConsumerMetrics } from '../../../src/consumer/metrics.js';

describe('consumer/metrics', () => {
  it('registers every metric under its documented name', async () => {
    const registry = new Registry();
    new ConsumerMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).to.have.members(Object.values(ConsumerMetricName));
  });

  it('reuses the metrics when created twice on the same registry', async () => {
    const registry = new Registry();
    const first = new ConsumerMetrics(registry);
    const second = new ConsumerMetrics(registry);
    first.handled.inc({ topic: 't' });
    second.handled.inc({ topic: 't' });
    expect(second.handled).to.equal(first.handled);
    const handled = await registry.getSingleMetric(ConsumerMetricName.handled)?.get();
    expect(handled?.values[0]?.value).to.equal(2);
  });

  it('labels dead letters by topic and reason', async () => {
    const registry = new Registry();
    new ConsumerMetrics(registry).recordDeadLetter('t', 'no-change-id');
    const text = await registry.metrics();
    expect(text).to.contain(`${ConsumerMetricName.deadLettered}{topic="t",reason="no-change-id"} 1`);
  });
});
