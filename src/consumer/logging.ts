import { logLevel, type LogEntry, type logCreator } from 'kafkajs';
import { pino } from 'pino';

/** The part of a pino logger the helper uses; a pino `Logger` fits. */
export interface ConsumerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): ConsumerLogger;
}

/** Without a logger from the caller: pino to stdout, warnings and errors only. */
export function defaultLogger(): ConsumerLogger {
  return pino({ name: 'mongo-kafka-relay-consumer', level: 'warn' });
}

export function childLogger(logger: ConsumerLogger, bindings: Record<string, unknown>): ConsumerLogger {
  return logger.child ? logger.child(bindings) : logger;
}

/**
 * Routes kafkajs's own log lines into `logger` (used when the helper creates the Kafka client).
 * kafkajs entries carry no credentials; SASL settings are never part of them.
 */
export function kafkaLogCreator(logger: ConsumerLogger): logCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      // kafkajs adds its own timestamp and logger name; pino has both already.
      const {
        message,
        timestamp: _timestamp,
        logger: _logger,
        ...extra
      } = log as LogEntry['log'] & {
        timestamp?: unknown;
        logger?: unknown;
      };
      const fields = { kafkajs: namespace, ...extra };
      switch (level) {
        case logLevel.ERROR:
        case logLevel.NOTHING:
          logger.error(fields, message);
          break;
        case logLevel.WARN:
          logger.warn(fields, message);
          break;
        case logLevel.INFO:
          logger.info(fields, message);
          break;
        default:
          logger.debug(fields, message);
      }
    };
}
