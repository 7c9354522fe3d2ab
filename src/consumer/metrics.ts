import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';

import type { DeadLetterReason } from './types.js';

/** Every metric the consumer helper exports, by name. */
export const ConsumerMetricName = {
  handled: 'mongo_kafka_relay_consumer_handled_total',
  duplicates: 'mongo_kafka_relay_consumer_duplicates_total',
  deadLettered: 'mongo_kafka_relay_consumer_dead_lettered_total',
  handlerRetries: 'mongo_kafka_relay_consumer_handler_retries_total',
  handlerDuration: 'mongo_kafka_relay_consumer_handler_duration_seconds',
  handlerTimeouts: 'mongo_kafka_relay_consumer_handler_timeouts_total',
  blockedPartitions: 'mongo_kafka_relay_consumer_blocked_partitions',
  crashes: 'mongo_kafka_relay_consumer_crashes_total',
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
  readonly handlerTimeouts: Counter<TopicLabel>;
  readonly blockedPartitions: Gauge<'group' | 'reason'>;
  readonly crashes: Counter<'group' | 'restart'>;

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
    this.handlerTimeouts = counter(
      registry,
      ConsumerMetricName.handlerTimeouts,
      'Handler calls aborted after handlerTimeoutMs (each also counts as a failed attempt).',
      ['topic'],
    );
    this.blockedPartitions =
      existing<Gauge<'group' | 'reason'>>(registry, ConsumerMetricName.blockedPartitions, Gauge) ??
      new Gauge<'group' | 'reason'>({
        name: ConsumerMetricName.blockedPartitions,
        help: 'Partitions paused until a retry: reason handler-retry, mongodb or dead-letter-publish.',
        labelNames: ['group', 'reason'],
        registers: [registry],
      });
    this.crashes = counter(
      registry,
      ConsumerMetricName.crashes,
      'Crashes of the kafkajs consumer; restart="false" means it stopped for good (see health()).',
      ['group', 'restart'],
    );
  }

  recordDeadLetter(topic: string, reason: DeadLetterReason): void {
    this.deadLettered.inc({ topic, reason });
  }
}
