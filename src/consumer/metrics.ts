import { Counter, Histogram, register as globalRegistry, type Registry } from 'prom-client';

import type { DeadLetterReason } from './types.js';

/** Every metric the consumer helper exports, by name. */
export const ConsumerMetricName = {
  handled: 'mongo_kafka_relay_consumer_handled_total',
  duplicates: 'mongo_kafka_relay_consumer_duplicates_total',
  deadLettered: 'mongo_kafka_relay_consumer_dead_lettered_total',
  handlerRetries: 'mongo_kafka_relay_consumer_handler_retries_total',
  handlerDuration: 'mongo_kafka_relay_consumer_handler_duration_seconds',
} as const;

type TopicLabel = 'topic';

/** Handler durations range from sub-millisecond writes to slow remote calls. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function existing<M>(registry: Registry, name: string, kind: new (...args: never[]) => M): M | undefined {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  if (!(metric instanceof kind)) {
    throw new Error(`Metric ${name} is already registered on this registry with another type`);
  }
  return metric;
}

function counter<T extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: T[],
): Counter<T> {
  return (
    existing<Counter<T>>(registry, name, Counter) ??
    new Counter<T>({ name, help, labelNames, registers: [registry] })
  );
}

/**
 * The helper's metrics on one registry. Creating them again on the same registry (a second consumer,
 * a restart in the same process) reuses the registered metrics instead of throwing.
 */
export class ConsumerMetrics {
  readonly handled: Counter<TopicLabel>;
  readonly duplicates: Counter<TopicLabel>;
  readonly deadLettered: Counter<TopicLabel | 'reason'>;
  readonly handlerRetries: Counter<TopicLabel>;
  readonly handlerDuration: Histogram<TopicLabel | 'outcome'>;

  constructor(registry: Registry = globalRegistry) {
    this.handled = counter(
      registry,
      ConsumerMetricName.handled,
      'Change events whose handler succeeded (the seen mark was written).',
      ['topic'],
    );
    this.duplicates = counter(
      registry,
      ConsumerMetricName.duplicates,
      'Records skipped because their change ID was already seen.',
      ['topic'],
    );
    this.deadLettered = counter(
      registry,
      ConsumerMetricName.deadLettered,
      'Records published to the dead-letter topic, by reason.',
      ['topic', 'reason'],
    );
    this.handlerRetries = counter(
      registry,
      ConsumerMetricName.handlerRetries,
      'Handler calls that failed and were retried.',
      ['topic'],
    );
    this.handlerDuration =
      existing<Histogram<TopicLabel | 'outcome'>>(registry, ConsumerMetricName.handlerDuration, Histogram) ??
      new Histogram<TopicLabel | 'outcome'>({
        name: ConsumerMetricName.handlerDuration,
        help: 'Duration of one handler call (in transactional mode: the whole transaction), by outcome.',
        labelNames: ['topic', 'outcome'],
        buckets: DURATION_BUCKETS,
        registers: [registry],
      });
  }

  recordDeadLetter(topic: string, reason: DeadLetterReason): void {
    this.deadLettered.inc({ topic, reason });
  }
}
