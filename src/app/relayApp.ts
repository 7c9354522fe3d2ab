/**
 * Composition root of the daemon: wires source -> pipeline -> sink -> checkpoint with metrics and the
 * lease around them, starts them in order and stops them in reverse.
 */
import { MongoClient, MongoServerSelectionError } from 'mongodb';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/settings.js';
import { redactUri } from '../config/redact.js';
import {
  CheckpointStore,
  LeaseHeldError,
  LeaseLostError,
  type CheckpointDoc,
} from '../checkpoint/checkpointStore.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { LeaseKeeper, LeaseNotHeldError } from '../checkpoint/leaseKeeper.js';
import { RelayMetrics } from '../metrics/relayMetrics.js';
import { MetricsServer } from '../metrics/httpServer.js';
import {
  FatalStreamError,
  HistoryLostError,
  describePosition,
  type StartPosition,
} from '../source/changeSource.js';
import { buildStreamPipeline } from '../source/streamPipeline.js';
import { formatTarget } from '../source/watchTargets.js';
import { formatClusterTime, clusterTimeOfToken } from '../source/resumeToken.js';
import { KafkaSink } from '../sink/kafkaSink.js';
import { createKafka } from '../sink/kafkaClient.js';
import { installFastProduceEncoder } from '../sink/fastProduceEncoder.js';
import { Pump } from '../pipeline/pump.js';
import type { ItemSource } from '../pipeline/itemSource.js';
import { openItemSource } from '../pipeline/openItemSource.js';
import { TopicRouter } from '../pipeline/topicRouter.js';
import { sleep } from '../util/async.js';
import { ExitCode } from './exitCodes.js';
import { HistoryLostExit, RelayExit } from './errors.js';
import { checkWatchFingerprint, resumePoint } from './resumePoint.js';
import { VERSION } from './version.js';

export class RelayApp {
  readonly metrics = new RelayMetrics(VERSION);
  private stopRequested = false;
  private fatal: RelayExit | null = null;
  private wakeStop: (() => void) | null = null;
  private streamOpen = false;
  private sink: KafkaSink | null = null;
  private lease: LeaseKeeper | null = null;
  private pump: Pump | null = null;
  metricsPort = 0;
  private publishedSinceStart = 0;

  constructor(
    private readonly config: RelayConfig,
    private readonly logger: Logger,
  ) {}

  /** Runs until a graceful stop (resolves) or a fatal condition (throws RelayExit). */
  async run(): Promise<void> {
    const { config, logger } = this;
    const d = config.derived;
    const server = new MetricsServer(this.metrics.registry, { ready: () => this.readiness() });
    this.metrics.setReadinessProbe(() => this.readiness().ready);
    this.metricsPort = await server.listen(config.metrics.host, config.metrics.port);
    logger.info(
      {
        version: VERSION,
        checkpointId: d.checkpointId,
        checkpointIdDerived: d.checkpointIdDerived,
        watch: d.targets.map(formatTarget),
        scope: d.scope,
        mongodb: redactUri(config.mongodb.uri),
        kafka: d.brokers,
        checkpointMode: config.checkpoint.mode,
        metrics: `http://${config.metrics.host}:${this.metricsPort}/metrics`,
      },
      'configuration loaded',
    );
    const mongo = new MongoClient(config.mongodb.uri, { appName: 'mongo-kafka-relay' });
    const sameStore = d.checkpointUri === config.mongodb.uri;
    const storeClient = sameStore
      ? mongo
      : new MongoClient(d.checkpointUri, { appName: 'mongo-kafka-relay-checkpoint' });
    try {
      await connectMongo(mongo, config.mongodb.uri);
      if (!sameStore) await connectMongo(storeClient, d.checkpointUri);
      await this.runConnected(mongo, storeClient, sameStore);
    } finally {
      await Promise.allSettled([mongo.close(), sameStore ? Promise.resolve() : storeClient.close()]);
      await server.close();
    }
    if (this.fatal) throw this.fatal;
  }

  /** First signal: graceful stop. */
  requestStop(reason: string): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.logger.info(
      { reason },
      'stopping: no more reads; waiting for in-flight events and the last checkpoint',
    );
    this.pump?.stop();
    this.wakeStop?.();
  }

  private async runConnected(
    mongo: MongoClient,
    storeClient: MongoClient,
    sameStore: boolean,
  ): Promise<void> {
    const { config, logger } = this;
    const d = config.derived;
    const store = new CheckpointStore(
      storeClient,
      config.checkpoint.database,
      config.checkpoint.collection,
      d.checkpointId,
    );
    const lease = new LeaseKeeper(store, config.lease, logger, (owner, mine) => {
      this.metrics.leaseOwner.reset();
      this.metrics.leaseOwner.set({ owner, checkpoint_id: d.checkpointId }, mine ? 1 : 0);
    });
    this.lease = lease;
    try {
      await lease.acquire(() => this.stopRequested);
    } catch (error) {
      if (error instanceof LeaseHeldError) throw new RelayExit(error.message, ExitCode.lease);
      if (this.stopRequested) return;
      throw error;
    }
    try {
      const checkpoint = await store.read();
      const start = this.resumeFrom(checkpoint);
      const sink = await this.connectSink();
      if (!sink) return;
      const checkpointer = new Checkpointer(
        store,
        lease.owner,
        config.checkpoint,
        { fingerprint: d.fingerprint, watch: d.targets.map(formatTarget) },
        logger,
        {
          onWrite: (position, at, counts) => {
            this.metrics.checkpointWritten(at);
            this.logProgress(position.token._data, counts.published);
          },
          onFatal: (error) => this.fail(new RelayExit(error.message, ExitCode.lease), true),
        },
      );
      checkpointer.persisted = checkpoint?.token
        ? { token: checkpoint.token, clusterTime: checkpoint.clusterTime }
        : null;
      checkpointer.start();
      lease.startRenewing((error: LeaseLostError) =>
        this.fail(new RelayExit(error.message, ExitCode.lease), true),
      );
      const source = openItemSource({
        readerThread: config.relay.readerThread,
        mongoUri: config.mongodb.uri,
        client: mongo,
        start,
        topicTemplate: config.kafka.topic,
        scope: d.scope,
        record: { format: config.relay.valueFormat, partitionBy: config.relay.partitionBy },
        operationTypes: d.operationTypes,
        limits: { items: config.relay.maxInFlight, bytes: config.relay.maxInFlightBytes },
        logLevel: config.log.level,
        source: {
          scope: d.scope,
          pipeline: buildStreamPipeline(
            d.scope,
            d.targets,
            sameStore
              ? { checkpointDb: config.checkpoint.database, checkpointColl: config.checkpoint.collection }
              : null,
            d.pipeline,
          ),
          fullDocument: config.relay.fullDocument,
          fullDocumentBeforeChange: config.relay.fullDocumentBeforeChange,
          maxAwaitTimeMS: config.relay.maxAwaitMs,
          logger,
          onRestart: (reason) => this.metrics.streamRestarts.inc({ reason }),
          onOpenChange: (open) => (this.streamOpen = open),
        },
      });
      await this.pumpUntilStopped(source, sink, checkpointer);
      await this.shutdown(source, sink, checkpointer);
    } finally {
      await lease.release();
    }
  }

  private async pumpUntilStopped(
    source: ItemSource,
    sink: KafkaSink,
    checkpointer: Checkpointer,
  ): Promise<void> {
    const { config, logger } = this;
    const pump = new Pump({
      source,
      sink,
      checkpointer,
      maxInFlight: config.relay.maxInFlight,
      maxInFlightBytes: config.relay.maxInFlightBytes,
      metrics: this.metrics,
      logger,
      mayPublish: () => this.lease?.mayPublish() ?? false,
      onFatal: (error) =>
        error instanceof LeaseNotHeldError
          ? this.fail(new RelayExit(error.message, ExitCode.lease), true)
          : this.fail(
              new RelayExit(`publishing failed: ${(error as Error).message}`, ExitCode.failure),
              false,
            ),
    });
    this.pump = pump;
    if (this.stopRequested) pump.stop();
    while (!this.stopRequested && !this.fatal) {
      try {
        await pump.run();
        return;
      } catch (error) {
        if (error instanceof HistoryLostError) {
          if (config.relay.onHistoryLost === 'restart-from-now') {
            logger.error(
              { err: error.cause, lostPosition: describePosition(error.position) },
              'change stream history lost; RELAY_ON_HISTORY_LOST=restart-from-now: continuing from now, changes in between are NOT relayed',
            );
            this.metrics.streamRestarts.inc({ reason: 'history-lost' });
            source.restartFromNow();
            continue;
          }
          const token = 'startAfter' in error.position ? error.position.startAfter : null;
          this.fail(
            new HistoryLostExit(
              config.derived.checkpointId,
              describePosition(error.position),
              formatClusterTime(token ? clusterTimeOfToken(token) : null),
              (error.cause as Error).message,
            ),
            false,
          );
          return;
        }
        if (error instanceof FatalStreamError) {
          this.fail(
            new RelayExit(
              `the change stream failed and cannot be resumed: ${error.message}. Check RELAY_WATCH, RELAY_PIPELINE, ` +
                "RELAY_FULL_DOCUMENT* and the MongoDB user's privileges (changeStream, find); the relay resumes from its checkpoint when restarted.",
              ExitCode.failure,
            ),
            false,
          );
          return;
        }
        throw error;
      }
    }
  }

  private async shutdown(source: ItemSource, sink: KafkaSink, checkpointer: Checkpointer): Promise<void> {
    const pump = this.pump!;
    pump.stop();
    await source.close();
    const leaseLost = this.fatal?.exitCode === ExitCode.lease;
    const deadline = Date.now() + (leaseLost ? 0 : this.config.relay.shutdownTimeoutMs);
    const drainedInTime = await raceDeadline(pump.drained(), deadline);
    await sink.stop(deadline);
    if (!leaseLost) await raceDeadline(checkpointer.stop(), deadline + 2000);
    this.logger.info(
      {
        drained: drainedInTime,
        abandonedInFlight: pump.window.inFlight,
        checkpoint: checkpointer.persisted?.token._data ?? null,
      },
      drainedInTime
        ? 'stopped: every read event acknowledged and checkpointed'
        : 'stopped at the shutdown timeout; unacknowledged events will be re-read after restart',
    );
  }

  /** One progress line every RELAY_PROGRESS_LOG_EVERY published events (cheap: a counter per write). */
  private logProgress(token: string, published: number): void {
    const every = this.config.relay.progressLogEvery;
    if (every === 0 || published === 0) return;
    const before = this.publishedSinceStart;
    this.publishedSinceStart += published;
    if (Math.floor(before / every) !== Math.floor(this.publishedSinceStart / every)) {
      this.logger.info({ published: this.publishedSinceStart, checkpoint: token }, 'checkpoint progress');
    }
  }

  private fail(error: RelayExit, immediate: boolean): void {
    if (this.fatal) return;
    this.fatal = error;
    this.logger.error({ exitCode: error.exitCode }, error.message);
    error.logged = true;
    if (immediate) this.sink?.stop(Date.now()).catch(() => undefined);
    this.pump?.stop();
    this.wakeStop?.();
  }

  /** Decide and log where the stream resumes; refuses a checkpoint of another watch configuration. */
  private resumeFrom(checkpoint: CheckpointDoc | null): StartPosition {
    const d = this.config.derived;
    if (checkWatchFingerprint(checkpoint, this.config) === 'allowed-change') {
      this.logger.warn(
        { stored: checkpoint?.watch, configured: d.targets.map(formatTarget) },
        'checkpoint written with another watch configuration; continuing (RELAY_ALLOW_WATCH_CHANGE=true)',
      );
    }
    const { start, from } = resumePoint(checkpoint, this.config);
    this.logger.info(
      {
        checkpointId: d.checkpointId,
        resumePoint: describePosition(start),
        from,
        checkpointClusterTime: formatClusterTime(checkpoint?.clusterTime),
        checkpointWrittenAt: checkpoint?.writtenAt,
      },
      'resume point',
    );
    return start;
  }

  /** Kafka may be down when we start: keep trying (readiness stays 503) until it answers or we stop. */
  private async connectSink(): Promise<KafkaSink | null> {
    const { config, logger } = this;
    const fastProduceEncoder = installFastProduceEncoder();
    for (let attempt = 1; !this.stopRequested && !this.fatal; attempt++) {
      const sink = new KafkaSink(createKafka(config, logger), {
        maxMessageBytes: config.kafka.maxMessageBytes,
        maxBatchBytes: config.kafka.maxBatchBytes,
        maxBatchRecords: config.checkpoint.mode === 'serial' ? 1 : 1000,
        retryMaxMs: config.kafka.retryMaxMs,
        deadLetterTopic: config.kafka.deadLetterTopic,
        createTopics: config.kafka.createTopics
          ? { partitions: config.kafka.topicPartitions, replicationFactor: config.kafka.replicationFactor }
          : null,
        logger,
        onPublishError: () => this.metrics.publishErrors.inc(),
        onDeadLetter: (reason) => this.metrics.deadLetters.inc({ reason }),
      });
      try {
        await sink.connect();
        // Best effort: a failure here is retried on the first publish to the topic.
        await sink
          .createMissingTopics(knownTopics(config))
          .catch((error: unknown) =>
            logger.warn(
              { err: error },
              'could not create the topics of the watch targets yet; will retry on publish',
            ),
          );
        this.sink = sink;
        logger.info({ brokers: config.derived.brokers, fastProduceEncoder }, 'kafka connected');
        return sink;
      } catch (error) {
        await sink.stop(Date.now()).catch(() => undefined); // half-connected clients must not leak
        const delay = Math.min(config.kafka.retryMaxMs, 500 * 2 ** Math.min(attempt - 1, 10));
        logger.warn(
          { err: error, retryInMs: delay, brokers: config.derived.brokers },
          'cannot connect to Kafka; retrying',
        );
        await Promise.race([sleep(delay), new Promise<void>((resolve) => (this.wakeStop = resolve))]);
      }
    }
    return null;
  }

  private readiness(): { ready: boolean; detail: Record<string, boolean> } {
    const detail = {
      changeStreamOpen: this.streamOpen,
      kafkaConnected: this.sink?.isHealthy ?? false,
      leaseHeld: this.lease?.mayPublish() ?? false,
    };
    return { ready: !this.stopRequested && Object.values(detail).every(Boolean), detail };
  }
}

/** The topics of collection targets: known before any change arrives. */
function knownTopics(config: RelayConfig): string[] {
  const router = new TopicRouter(config.kafka.topic, config.derived.scope);
  return config.derived.targets.flatMap((t) =>
    t.kind === 'collection' ? [router.topicFor({ db: t.db, coll: t.coll })] : [],
  );
}

async function connectMongo(client: MongoClient, uri: string): Promise<void> {
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (error) {
    const hint =
      error instanceof MongoServerSelectionError
        ? 'check that the host is reachable and the connection string is right'
        : 'check the connection string and credentials';
    throw new RelayExit(
      `cannot connect to MongoDB at ${redactUri(uri)}: ${(error as Error).message}; ${hint}`,
      ExitCode.failure,
    );
  }
}

async function raceDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>(
    (resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))),
  );
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
