/**
 * `mongo-kafka-relay consumer-redrive`: the consumer helper's re-drive (src/consumer/redrive.ts) for
 * operators. It needs only Kafka and MongoDB, not the relay's configuration: KAFKA_BROKERS, MONGODB_URI
 * and, when Kafka needs them, KAFKA_CLIENT_ID, KAFKA_SSL and KAFKA_SASL_* (same meaning as for the relay).
 */
import { Option, type Command } from 'commander';
import { logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';

import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';
import { redriveDeadLetters, type RedriveReport } from '../consumer/index.js';

interface RedriveFlags {
  group: string;
  deadLetterTopic: string;
  seenDb: string;
  seenCollection: string;
  seenScope?: string;
  dryRun?: boolean;
  clearOnly?: boolean;
  json?: boolean;
}

function configError(message: string): RelayExit {
  return new RelayExit(message, ExitCode.config);
}

function required(env: NodeJS.ProcessEnv, name: string, what: string): string {
  const value = env[name]?.trim();
  if (!value) throw configError(`${name} is not set: ${what}`);
  return value;
}

function booleanVariable(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name]?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw configError(`${name}=${JSON.stringify(env[name])} is not allowed: use true or false`);
}

const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** The kafkajs client settings from the relay's KAFKA_* variables (only those a client needs). */
export function kafkaConfigFromEnv(env: NodeJS.ProcessEnv): KafkaConfig {
  const brokers = required(env, 'KAFKA_BROKERS', 'the Kafka bootstrap brokers, host:port[,host:port]')
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
  const config: KafkaConfig = {
    clientId: env.KAFKA_CLIENT_ID?.trim() || 'mongo-kafka-relay-redrive',
    brokers,
    ssl: booleanVariable(env, 'KAFKA_SSL'),
    logLevel: logLevel.NOTHING,
  };
  const mechanism = (env.KAFKA_SASL_MECHANISM?.trim() || 'none') as (typeof SASL_MECHANISMS)[number];
  if (!SASL_MECHANISMS.includes(mechanism)) {
    throw configError(
      `KAFKA_SASL_MECHANISM=${JSON.stringify(mechanism)} is not allowed: use ${SASL_MECHANISMS.join(', ')}`,
    );
  }
  if (mechanism !== 'none') {
    config.sasl = {
      mechanism,
      username: env.KAFKA_SASL_USERNAME ?? '',
      password: env.KAFKA_SASL_PASSWORD ?? '',
    } as SASLOptions;
  }
  return config;
}

function printReport(report: RedriveReport, flags: RedriveFlags): void {
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const verb = report.dryRun ? 'would re-drive' : flags.clearOnly ? 'made pending' : 're-drove';
  process.stdout.write(
    `${verb} ${report.redriven} dead letter(s) of group ${flags.group} from ${flags.deadLetterTopic} ` +
      `(read ${report.read}; skipped ${report.skipped} already handled or expired; ${report.otherGroups} of other groups)\n`,
  );
  for (const changeId of report.changeIds) process.stdout.write(`  ${changeId}\n`);
}

export function registerConsumerRedriveCommand(program: Command): void {
  program
    .command('consumer-redrive')
    .description(
      "re-drive a consumer group's dead letters: mark them not seen and re-publish them to their source topics",
    )
    .requiredOption('--group <id>', 'the consumer group whose dead letters to re-drive')
    .requiredOption(
      '--dead-letter-topic <topic>',
      'the dead-letter topic to read (e.g. mongo.shop.orders.dlq)',
    )
    .addOption(new Option('--seen-db <db>', "the consumer's seen.db").default('mongo_kafka_relay'))
    .addOption(
      new Option('--seen-collection <name>', "the consumer's seen.collection").default('seen_changes'),
    )
    .option('--seen-scope <scope>', "the consumer's seen.scope (default: the group id)")
    .option('--dry-run', 'only report what would be re-driven')
    .option(
      '--clear-only',
      'only mark them not seen (for an application that consumes the dead-letter topic itself)',
    )
    .option('--json', 'machine-readable output')
    .action(async (flags: RedriveFlags) => {
      const kafka = kafkaConfigFromEnv(process.env);
      const uri = required(process.env, 'MONGODB_URI', 'the MongoDB deployment of the seen collection');
      const report = await redriveDeadLetters({
        kafka,
        mongo: { uri },
        groupId: flags.group,
        deadLetterTopic: flags.deadLetterTopic,
        seen: {
          db: flags.seenDb,
          collection: flags.seenCollection,
          ...(flags.seenScope ? { scope: flags.seenScope } : {}),
        },
        dryRun: flags.dryRun ?? false,
        clearOnly: flags.clearOnly ?? false,
      });
      printReport(report, flags);
    });
}
