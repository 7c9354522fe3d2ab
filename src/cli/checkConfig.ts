/**
 * `check-config`: the configuration is already valid when we get here (a bad one exits 3 before);
 * with `--offline` that is all, for CI linting of manifests. Otherwise prove each dependency with a
 * real round trip and print one line per check. Nothing is published and the checkpoint is untouched
 * (the store check writes and deletes a probe document of its own). Timeouts set in the connection
 * string are honoured (see mongoOptions.ts).
 */
import { MongoClient, type ChangeStream } from 'mongodb';
import pino from 'pino';
import type { RelayConfig } from '../config/settings.js';
import type { ConfigWarning } from '../config/load.js';
import { redactSecrets, redactUri } from '../config/redact.js';
import { createKafka } from '../sink/kafkaClient.js';
import { formatTarget, type WatchTarget } from '../config/watchTargets.js';
import { TopicRouter } from '../pipeline/topicRouter.js';
import { withTimeout } from '../util/async.js';
import { describeOplogReading, readOplogBounds } from '../metrics/oplogWindow.js';
import { cliMongo } from './mongoOptions.js';

interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
  ms: number;
}

export interface CheckOptions {
  json: boolean;
  /** Validate the configuration only; contact neither MongoDB nor Kafka. */
  offline: boolean;
  warnings: readonly ConfigWarning[];
}

const DEFAULT_TIMEOUT_MS = 8000;

export async function runChecks(config: RelayConfig, options: CheckOptions): Promise<boolean> {
  const { json, offline, warnings } = options;
  const results: CheckResult[] = [];
  const print = (r: CheckResult): void => {
    results.push(r);
    if (!json) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.check}: ${r.detail} (${r.ms} ms)\n`);
  };
  const watch = config.derived.targets.map(formatTarget).join(',');
  if (!json) {
    process.stdout.write(`ok   configuration: checkpoint ${config.derived.checkpointId}, watch ${watch}\n`);
    for (const w of warnings) process.stdout.write(`warn ${w.message}\n`);
    if (offline) process.stdout.write('ok   offline: MongoDB and Kafka were not contacted\n');
  }
  if (!offline) {
    await checkMongo(config, print);
    await checkKafka(config, print);
  }
  const ok = results.every((r) => r.ok);
  if (json) {
    const configuration = { ok: true, checkpointId: config.derived.checkpointId, watch, warnings };
    process.stdout.write(`${JSON.stringify({ ok, offline, configuration, checks: results }, null, 2)}\n`);
  }
  return ok;
}

type Report = (r: CheckResult) => void;

/** One check, reported with its duration; `timeoutMs` bounds a check that would otherwise hang. */
async function timed(
  check: string,
  report: Report,
  work: () => Promise<string>,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<boolean> {
  const started = Date.now();
  try {
    const detail = await withTimeout(work(), timeoutMs);
    report({ check, ok: true, detail, ms: Date.now() - started });
    return true;
  } catch (error) {
    report({ check, ok: false, detail: redactSecrets((error as Error).message), ms: Date.now() - started });
    return false;
  }
}

async function checkMongo(config: RelayConfig, report: Report): Promise<void> {
  const watched = cliMongo(config.mongodb.uri, 'mongo-kafka-relay-check');
  const client = new MongoClient(config.mongodb.uri, watched.options);
  try {
    const reachable = await timed(
      `mongodb ping ${redactUri(config.mongodb.uri)}`,
      report,
      async () => {
        await client.connect();
        await client.db('admin').command({ ping: 1 });
        return 'reachable';
      },
      watched.checkTimeoutMs,
    );
    if (!reachable) return;
    for (const target of config.derived.targets) {
      await timed(
        `change stream on ${formatTarget(target)}`,
        report,
        () => openStream(client, target),
        watched.checkTimeoutMs,
      );
    }
    await timed('oplog window (local.oplog.rs)', report, async () =>
      describeOplogReading(await readOplogBounds(client)),
    );
    const sameStore = config.derived.checkpointUri === config.mongodb.uri;
    const store = sameStore ? watched : cliMongo(config.derived.checkpointUri, 'mongo-kafka-relay-check');
    const storeClient = sameStore ? client : new MongoClient(config.derived.checkpointUri, store.options);
    try {
      await timed(
        `checkpoint store ${config.checkpoint.database}.${config.checkpoint.collection}`,
        report,
        async () => {
          const coll = storeClient
            .db(config.checkpoint.database)
            .collection<{ _id: string; at: Date }>(config.checkpoint.collection);
          const probeId = `${config.derived.checkpointId}.check-config`;
          await coll.replaceOne({ _id: probeId }, { at: new Date() }, { upsert: true });
          await coll.deleteOne({ _id: probeId });
          return 'writable';
        },
        store.checkTimeoutMs,
      );
    } finally {
      if (storeClient !== client) await storeClient.close();
    }
  } finally {
    await client.close();
  }
}

async function openStream(client: MongoClient, target: WatchTarget): Promise<string> {
  const options = { maxAwaitTimeMS: 100 };
  const stream: ChangeStream =
    target.kind === 'collection'
      ? client.db(target.db).collection(target.coll).watch([], options)
      : target.kind === 'database'
        ? client.db(target.db).watch([], options)
        : client.watch([], options);
  try {
    await stream.tryNext();
    return 'opens';
  } finally {
    await stream.close();
  }
}

async function checkKafka(config: RelayConfig, report: Report): Promise<void> {
  const kafka = createKafka(config, pino({ level: 'silent' }));
  const admin = kafka.admin();
  try {
    const reachable = await timed(`kafka metadata ${config.derived.brokers.join(',')}`, report, async () => {
      await admin.connect().catch((error: Error) => {
        // kafkajs says the login failed, not what to change: name the settings (never their values).
        if (error.name !== 'KafkaJSSASLAuthenticationError') throw error;
        throw new Error(
          `${error.message}: check KAFKA_SASL_MECHANISM (${config.kafka.saslMechanism}), KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`,
        );
      });
      const cluster = await admin.describeCluster();
      return `${cluster.brokers.length} broker(s), controller ${cluster.controller ?? 'unknown'}`;
    });
    if (!reachable) return;
    const existing = new Set(await admin.listTopics());
    const router = new TopicRouter(config.kafka.topic, config.derived.scope);
    const topics = new Set<string>([config.kafka.deadLetterTopic]);
    for (const t of config.derived.targets)
      if (t.kind === 'collection') topics.add(router.topicFor({ db: t.db, coll: t.coll }));
    for (const topic of topics) {
      await timed(`topic ${topic}`, report, async () => {
        if (existing.has(topic)) return 'exists';
        if (config.kafka.createTopics) return 'missing; the relay will create it (KAFKA_CREATE_TOPICS=true)';
        throw new Error('missing and KAFKA_CREATE_TOPICS=false: create it, or allow the relay to');
      });
    }
    if (config.derived.targets.some((t) => t.kind !== 'collection')) {
      report({
        check: 'topics of database/deployment targets',
        ok: true,
        detail: `named ${config.kafka.topic} per collection as changes arrive`,
        ms: 0,
      });
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
