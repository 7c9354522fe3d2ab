/**
 * Misspelt settings are not silently ignored: every environment variable with a prefix of ours
 * (RELAY_, KAFKA_, METRICS_) that is not a setting gets a warning naming the closest setting. Never
 * the value: it may be a secret. Variables that others legitimately put there are left alone: the
 * Kafka tools' own, this repository's test tooling, and Kubernetes service links (a Service named
 * "kafka" gives every pod KAFKA_SERVICE_HOST, KAFKA_PORT_9092_TCP, ...).
 */
import { closestName } from './closestName.js';

export interface ConfigWarning {
  /** The environment variable (or config-file key) the warning is about. */
  variable: string;
  message: string;
  /** The setting it probably meant. */
  suggestion?: string;
}

const OUR_PREFIXES = ['RELAY_', 'KAFKA_', 'METRICS_'];

/** Read by Kafka's scripts and by this repository's test and service tooling, not by the relay. */
const OTHERS = new Set([
  'KAFKA_HOME',
  'KAFKA_OPTS',
  'KAFKA_HEAP_OPTS',
  'KAFKA_JVM_PERFORMANCE_OPTS',
  'KAFKA_LOG4J_OPTS',
  'KAFKA_JMX_OPTS',
  'KAFKA_GC_LOG_OPTS',
  'KAFKA_DEBUG',
  'KAFKA_LOG_DIR',
  'RELAY_TEST_SERVICES',
  'RELAY_KEEP_TEST_SERVICES',
  'RELAY_KAFKA_VERSION',
]);

export function unknownVariables(env: NodeJS.ProcessEnv, known: ReadonlySet<string>): ConfigWarning[] {
  const names = Object.keys(env).filter((name) => env[name] !== undefined);
  const services = names.flatMap((name) => /^(.+)_SERVICE_HOST$/.exec(name)?.[1] ?? []);
  const isServiceLink = (name: string): boolean =>
    services.some(
      (svc) =>
        name === `${svc}_SERVICE_HOST` ||
        name.startsWith(`${svc}_SERVICE_PORT`) ||
        name === `${svc}_PORT` ||
        name.startsWith(`${svc}_PORT_`),
    );
  return names
    .filter((name) => OUR_PREFIXES.some((p) => name.startsWith(p)))
    .filter((name) => !known.has(name) && !OTHERS.has(name) && !isServiceLink(name))
    .sort()
    .map((variable) => {
      const suggestion = closestName(variable, known);
      const message = `${variable} is not a setting of mongo-kafka-relay and is ignored; ${
        suggestion ? `did you mean ${suggestion}?` : 'see the configuration reference in the README'
      }`;
      return suggestion ? { variable, message, suggestion } : { variable, message };
    });
}
