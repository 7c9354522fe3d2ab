/**
 * The kafkajs client as the relay configures it: brokers, TLS (kafkaTls.ts), SASL, and kafkajs logs
 * routed into pino.
 * Shared by the sink and by `check-config`.
 */
import { Kafka, logLevel, type KafkaConfig, type SASLOptions, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/settings.js';
import { kafkaTlsOptions } from '../config/kafkaTls.js';

export function createKafka(config: RelayConfig, logger: Logger): Kafka {
  const kafkaConfig: KafkaConfig = {
    clientId: config.kafka.clientId,
    brokers: config.derived.brokers,
    ssl: kafkaTlsOptions(config.kafka),
    connectionTimeout: 5000,
    requestTimeout: 30000,
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => logKafkaEntry(logger, entry),
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
  };
  const sasl = saslOptions(config);
  if (sasl) kafkaConfig.sasl = sasl;
  return new Kafka(kafkaConfig);
}

function saslOptions(config: RelayConfig): SASLOptions | undefined {
  const { saslMechanism, saslUsername: username, saslPassword: password } = config.kafka;
  if (saslMechanism === 'none') return undefined;
  return { mechanism: saslMechanism, username, password } as SASLOptions;
}

// The relay retries failed sends itself (capped backoff, with metrics and readiness), so kafkajs' own
// retries are limited on purpose; its warning about that is expected and would only add noise.
// The sink's pinned partitioner aborts a call whose leader moved (src/sink/produceRequests.ts) and
// re-plans it at once: kafkajs logs that abort as an error, which it is not.
const EXPECTED_NOISE =
  /Limiting retries for the idempotent producer|the (leader of a partition|partition count) of \S+ changed/;

// kafkajs logs every error response ("Response Produce(...)") at ERROR before it retries or throws;
// whatever is not recovered reaches the relay as an exception and is logged there, with context.
const ERROR_RESPONSE = /^Response \w+\(key: \d+/;

// RELAY_DELIVERY=exactly-once: right after a commit the coordinator may still be writing its markers, and
// answers the next transaction's first request with CONCURRENT_TRANSACTIONS, which clients retry after a
// short backoff (the Java client does the same). kafkajs retries it, logging each try as an error.
const RETRIED_CONCURRENT_TRANSACTION = /another concurrent operation on the same transaction was ongoing/;

export function logKafkaEntry(
  logger: Pick<Logger, 'debug' | 'warn' | 'error'>,
  { level, log }: LogEntry,
): void {
  const { message, timestamp: _timestamp, logger: _name, ...rest } = log;
  if (EXPECTED_NOISE.test(message)) return;
  const child = { kafkajs: rest };
  const retried = RETRIED_CONCURRENT_TRANSACTION.test(message) && typeof rest.retryCount === 'number';
  if (level === logLevel.ERROR && (ERROR_RESPONSE.test(message) || retried))
    logger.debug(child, `kafka: ${message}`);
  else if (level === logLevel.ERROR) logger.error(child, `kafka: ${message}`);
  else if (level === logLevel.WARN) logger.warn(child, `kafka: ${message}`);
  else logger.debug(child, `kafka: ${message}`);
}
