/**
 * The relay's pino logger. Secrets are removed in three ways: known secret fields are redacted by path,
 * every message and error text goes through redactSecrets() (connection strings can hide inside
 * driver error messages), and so does every string field of a log record (kafkajs passes its own).
 */
import pino, { type Logger } from 'pino';
import { redactDeep, redactSecrets } from '../config/redact.js';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'mongo-kafka-relay' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'uri',
        '*.uri',
        'password',
        '*.password',
        '*.saslPassword',
        'mongodb.uri',
        'kafka.saslPassword',
        'checkpoint.uri',
      ],
      censor: '[redacted]',
    },
    formatters: {
      log: (record) => redactDeep(record) as Record<string, unknown>,
    },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        return {
          ...s,
          message: redactSecrets(s.message ?? ''),
          stack: s.stack ? redactSecrets(s.stack) : undefined,
        };
      },
    },
    hooks: {
      logMethod(args, method) {
        const [first, ...rest] = args as unknown[];
        if (typeof first === 'string') return method.apply(this, [redactSecrets(first), ...(rest as [])]);
        if (typeof rest[0] === 'string') rest[0] = redactSecrets(rest[0]);
        return method.apply(this, [first as object, ...(rest as [])]);
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
