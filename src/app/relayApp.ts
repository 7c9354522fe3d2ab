/**
 * Composition root of the daemon: wires source -> pipeline -> sink -> checkpoint with metrics and the
 * lease around them, starts them in order and stops them in reverse.
 */
import { MongoClient, type Timestamp } from 'mongodb';
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
import { LeaseKeeper } from '../checkpoint/leaseKeeper.js';
import { RelayMetrics } from '../metrics/relayMetrics.js';
import { countFailures } from '../metrics/countFailures.js';
import { OplogWindowMonitor, readOplogBounds } from '../metrics/oplogWindow.js';
import { MetricsServer } from '../metrics/httpServer.js';
import {
  FatalStreamError,
  HistoryLostError,
  UnreadableEventError,
  describePosition,
  type ConcreteStart,
  type StartPosition,
} from '../source/changeSource.js';
import { storeOnWatchedDeployment } from '../checkpoint/ownDeployment.js';
import { beforeLease, persistStart, underLease, type PersistedStart } from './checkpointStartup.js';
import { SnapshotProgress, prepareSnapshot, type PreparedSnapshot } from './snapshotStartup.js';
import { shutdownBudget } from './shutdownBudget.js';
import { storeClientOptions } from '../checkpoint/storeClient.js';
import { buildStreamPipeline } from '../source/streamPipeline.js';
import { formatTarget } from '../config/watchTargets.js';
import { formatClusterTime, clusterTimeOfToken } from '../source/resumeToken.js';
import { KafkaSink } from '../sink/kafkaSink.js';
import { TransactionalKafkaSink } from '../sink/transactionalSink.js';
import { resumeCheckpoint } from './committedPosition.js';
import { exitForPublishFailure } from './publishFailure.js';
import { connectMongo, connectSinkWhenKafkaAnswers } from './connect.js';
import { Pump } from '../pipeline/pump.js';
import type { ItemSource } from '../pipeline/itemSource.js';
import { openItemSource, type ItemSourceSettings } from '../pipeline/openItemSource.js';
import { sleep } from '../util/async.js';
import { ExitCode } from './exitCodes.js';
import { HistoryLostExit, MetricsBindExit, RelayExit, UnreadableEventExit } from './errors.js';
import { checkWatchFingerprint, resumePoint } from './resumePoint.js';
import { VERSION } from './version.js';
import { recordOptions } from './recordOptions.js';

/** Documents per batch of a snapshot's reads (the driver's cursor batch size). */
const SNAPSHOT_BATCH_SIZE = 1000;

export class RelayApp {
  readonly metrics: RelayMetrics;
  private stopRequested = false;
  private fatal: RelayExit | null = null;
  private wakeStop: (() => void) | null = null;
  private streamOpen = false;
  private sink: KafkaSink | null = null;
  private lease: LeaseKeeper | null = null;
  private pump: Pump | null = null;
  private source: ItemSource | null = null;
  private store: CheckpointStore | null = null;
  /** Monotonic time by which a graceful stop must be done (set by the stop request). */
  private stopDeadline: number | null = null;
  /** Set once the run is over: late callbacks (a straggling write) no longer decide the exit code. */
  private finished = false;
  metricsPort = 0;
  private publishedSinceStart = 0;

  constructor(
    private readonly config: RelayConfig,
    private readonly logger: Logger,
  ) {
    this.metrics = new RelayMetrics(VERSION, {
      nsLabelLimit: config.metrics.nsLabelLimit,
      checkpointId: config.derived.checkpointId,
    });
  }

  /** Runs until a graceful stop (resolves) or a fatal condition (throws RelayExit). */
  async run(): Promise<void> {
    const { config, logger } = this;
    const d = config.derived;
    // Clients first: their constructors parse the connection strings and may throw, and nothing may be
    // listening yet when they do (a listening probe server would keep a failed relay alive).
    const mongo = new MongoClient(config.mongodb.uri, { appName: 'mongo-kafka-relay' });
    // Always a client of its own: durable defaults, and a hung change stream never holds its connections.
    const storeClient = new MongoClient(d.checkpointUri, storeClientOptions(config));
    const server = new MetricsServer(this.metrics.registry, {
      ready: () => this.readiness(),
      live: () => ({
        live: this.sink?.isLive ?? true,
        detail: { sinkStalledSeconds: Math.round((this.sink?.stalledForMs() ?? 0) / 1000) },
      }),
    });
    this.metrics.setReadinessProbe(() => this.readiness().ready);
    this.metrics.setSinkStallProbe(() => this.sink?.stalledForMs() ?? 0);
    // The metrics server binds first, so probes answer while the relay waits for its lease; a taken port is
    // a configuration error (exit 3), reported before anything else is touched.
    this.metricsPort = await server
      .listen(config.metrics.host, config.metrics.port)
      .catch(async (error: unknown) => {
        await server.close();
        throw new MetricsBindExit(config.metrics.host, config.metrics.port, error);
      });
    logger.info(
      {
        version: VERSION,
        checkpointId: d.checkpointId,
        checkpointIdDefault: d.checkpointIdDefault,
        watch: d.targets.map(formatTarget),
        scope: d.scope,
        mongodb: redactUri(config.mongodb.uri),
        kafka: d.brokers,
        checkpointMode: config.checkpoint.mode,
        metrics: `http://${config.metrics.host}:${this.metricsPort}/metrics`,
      },
      'configuration loaded',
    );
    const oplog = new OplogWindowMonitor(
      () => readOplogBounds(mongo),
      (bounds) => this.metrics.oplogBounds(bounds),
      logger,
      config.metrics.oplogIntervalMs,
    );
    try {
      await connectMongo(mongo, config.mongodb.uri);
      await connectMongo(storeClient, d.checkpointUri);
      if (config.metrics.oplogIntervalMs > 0) oplog.start();
      await this.runConnected(mongo, storeClient);
    } finally {
      this.finished = true;
      oplog.stop();
      // Closing may wait for an unreachable server: never past the stop deadline.
      await raceDeadline(
        Promise.allSettled([mongo.close(), storeClient.close()]),
        this.stopDeadline ?? performance.now() + 5000,
      );
      await server.close();
    }
    if (this.fatal) throw this.fatal;
  }

  /** First signal: graceful stop. */
  requestStop(reason: string): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.stopDeadline = performance.now() + this.config.relay.shutdownTimeoutMs;
    // A pending read returns at once, even while MongoDB does not answer.
    void this.source?.close();
    this.logger.info(
      { reason },
      'stopping: no more reads; waiting for in-flight events and the last checkpoint',
    );
    this.pump?.stop();
    this.wakeStop?.();
  }

  private async runConnected(mongo: MongoClient, storeClient: MongoClient): Promise<void> {
    const { config, logger } = this;
    const d = config.derived;
    const store = new CheckpointStore(
      storeClient,
      config.checkpoint.database,
      config.checkpoint.collection,
      d.checkpointId,
      { timeoutMs: config.checkpoint.timeoutMs },
    );
    countFailures(store, 'write', () => this.metrics.checkpointWriteFailures.inc());
    this.store = store;
    await beforeLease(store, config);
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
    lease.startRenewing((error: LeaseLostError) =>
      this.fail(new RelayExit(error.message, ExitCode.lease), true),
    );
    let checkpointer: Checkpointer | null = null;
    try {
      let checkpoint = await underLease(store, lease.owner, config, logger);
      // Exactly-once: the committed position in Kafka decides where to resume (committedPosition.ts).
      if (config.relay.delivery === 'exactly-once') {
        const connected = await this.connectSink(lease.owner);
        if (!(connected instanceof TransactionalKafkaSink)) return;
        const resumed = resumeCheckpoint(d.checkpointId, checkpoint, connected.startPosition);
        checkpoint = resumed.checkpoint;
        logger.info(
          {
            from: resumed.from,
            positionsTopic: config.kafka.positionsTopic,
            transactionalId: d.transactionalId,
            committed: connected.startPosition?.token?._data ?? null,
          },
          'exactly-once: committed position read from Kafka',
        );
      }
      if (checkpoint?.token) {
        this.metrics.checkpointFound(
          checkpoint.writtenAt ?? null,
          positionSeconds(checkpoint.token, checkpoint.clusterTime),
        );
      }
      const start = this.resumeFrom(checkpoint);
      const own = { checkpointDb: config.checkpoint.database, checkpointColl: config.checkpoint.collection };
      const storeIsWatched = await storeOnWatchedDeployment(
        mongo,
        { database: own.checkpointDb, collection: own.checkpointColl, checkpointId: d.checkpointId },
        lease.owner,
        logger,
        config.checkpoint.timeoutMs,
      );
      const sourceSettings: ItemSourceSettings = {
        readerThread: config.relay.readerThread,
        mongoUri: config.mongodb.uri,
        client: mongo,
        start,
        topicTemplate: config.kafka.topic,
        scope: d.scope,
        record: recordOptions(config),
        operationTypes: d.operationTypes,
        deadLetterTopic: config.kafka.deadLetterTopic,
        limits: { items: config.relay.maxInFlight, bytes: config.relay.maxInFlightBytes },
        logLevel: config.log.level,
        snapshot: { batchSize: SNAPSHOT_BATCH_SIZE },
        onReaderHeap: (heap) => this.metrics.setReaderHeap(heap),
        source: {
          scope: d.scope,
          pipeline: buildStreamPipeline(d.scope, d.targets, storeIsWatched ? own : null, d.pipeline),
          fullDocument: config.relay.fullDocument,
          fullDocumentBeforeChange: config.relay.fullDocumentBeforeChange,
          maxAwaitTimeMS: config.relay.maxAwaitMs,
          onUnreadableEvent: config.relay.onUnreadableEvent,
          logger,
          onRestart: (reason) => this.metrics.streamRestarts.inc({ reason }),
          onOpenChange: (open) => (this.streamOpen = open),
        },
      };
      let source = openItemSource(sourceSettings);
      this.source = source;
      if (this.stopRequested) await source.close();
      const started = await this.startSource(source);
      if (!started) return;
      let snapshot = await prepareSnapshot(checkpoint, started, mongo, config, logger);
      // Exactly-once: the start is committed to Kafka first (an operator's `token set` is consumed by
      // the MongoDB write below: it must already hold in Kafka when that mark is gone).
      if (this.sink instanceof TransactionalKafkaSink) await this.commitStart(this.sink, started, snapshot);
      const persistedStart = await persistStart(
        store,
        lease.owner,
        started,
        checkpoint,
        config,
        snapshot?.store ?? null,
      );
      this.startWritten(persistedStart);
      source.beginReading?.(snapshot?.plan ?? null);
      const progressOf = (s: PreparedSnapshot | null) =>
        s ? new SnapshotProgress(s.plan, this.metrics.snapshot, logger, config.relay.progressLogEvery) : null;
      let snapshotProgress = progressOf(snapshot);
      const sink = this.sink ?? (await this.connectSink(lease.owner));
      if (!sink) return;
      checkpointer = new Checkpointer(
        store,
        lease.owner,
        config.checkpoint,
        { fingerprint: d.fingerprint, watch: d.targets.map(formatTarget) },
        logger,
        {
          onWrite: (position, at, counts, snapshotCursor) => {
            if (snapshotCursor) snapshotProgress?.written(snapshotCursor);
            if (!position) {
              // Snapshot progress only: the checkpoint is alive, at the snapshot's start.
              this.metrics.checkpointWritten(at, snapshot?.plan.clusterTime.high ?? null);
              return;
            }
            this.metrics.checkpointWritten(at, positionSeconds(position.token, position.clusterTime));
            this.logProgress(position.token._data, counts.published);
          },
          onFatal: (error) => this.fail(new RelayExit(error.message, ExitCode.lease), true),
        },
      );
      // What the store holds now: the start just persisted (a token), else the previous checkpoint.
      checkpointer.persisted =
        'token' in persistedStart.position
          ? persistedStart.position
          : checkpoint?.token
            ? { token: checkpoint.token, clusterTime: checkpoint.clusterTime }
            : null;
      checkpointer.persistedCounts = {
        published: checkpoint?.counts?.published ?? 0,
        filtered: checkpoint?.counts?.filtered ?? 0,
        deadLettered: checkpoint?.counts?.deadLettered ?? 0,
      };
      checkpointer.snapshotRunning = snapshot !== null;
      checkpointer.start();
      // RELAY_SNAPSHOT=when-needed: history lost -> a new position and a new snapshot, then on.
      while ((await this.pumpUntilStopped(source, sink, checkpointer)) === 'snapshot-again') {
        const again = await this.snapshotAgain(
          sourceSettings,
          source,
          checkpointer,
          store,
          lease.owner,
          mongo,
        );
        if (!again) break;
        ({ source, snapshot } = again);
        snapshotProgress = progressOf(snapshot);
      }
      if (await this.shutdown(source, sink, checkpointer)) checkpointer = null;
    } finally {
      await this.source?.close();
      // Never release while a checkpoint write may still be in flight: it is fenced by this lease.
      if (checkpointer === null)
        await raceDeadline(lease.release(), this.stopDeadline ?? performance.now() + 5000);
      else if (this.fatal?.exitCode !== ExitCode.lease)
        logger.warn('a checkpoint write may still be in flight; leaving the lease to expire by itself');
      this.finished = true;
    }
  }

  /** Resolve where the source starts (failures mapped like the pump's); null when stopped or failed. */
  private async startSource(source: ItemSource): Promise<ConcreteStart | null> {
    try {
      return await source.startingPosition();
    } catch (error) {
      if (error instanceof HistoryLostError || error instanceof FatalStreamError) {
        this.fail(
          new RelayExit(
            `the change stream cannot start: ${error.message}. Check RELAY_WATCH, RELAY_PIPELINE, RELAY_FULL_DOCUMENT* ` +
              "and the MongoDB user's privileges (changeStream, find); the relay resumes from its checkpoint when restarted.",
            ExitCode.failure,
          ),
          false,
        );
        return null;
      }
      throw error;
    }
  }

  /**
   * RELAY_SNAPSHOT=when-needed after the stream's history was lost: let what was read drain and be
   * checkpointed, open the stream at "now", store that start with a new snapshot's plan (one write),
   * and read the snapshot, then the stream. Null when stopped or failed meanwhile.
   */
  private async snapshotAgain(
    settings: ItemSourceSettings,
    old: ItemSource,
    checkpointer: Checkpointer,
    store: CheckpointStore,
    owner: string,
    mongo: MongoClient,
  ): Promise<{ source: ItemSource; snapshot: PreparedSnapshot } | null> {
    const { config, logger } = this;
    await old.close();
    // Nothing new is read; the checkpoint must settle before the start moves (a late write of an old
    // position would otherwise overwrite the new start).
    await this.pump?.drained();
    await checkpointer.flush();
    if (this.stopRequested || this.fatal) return null;
    const source = openItemSource({ ...settings, start: { now: true } });
    this.source = source;
    const started = await this.startSource(source);
    if (!started) return null;
    const checkpoint = await store.read();
    const snapshot = await prepareSnapshot(checkpoint, started, mongo, config, logger, 'history-lost');
    if (!snapshot) return null;
    if (this.sink instanceof TransactionalKafkaSink) await this.commitStart(this.sink, started, snapshot);
    this.startWritten(await persistStart(store, owner, started, checkpoint, config, snapshot.store));
    checkpointer.persisted = null;
    checkpointer.snapshotRunning = true;
    source.beginReading?.(snapshot.plan);
    return { source, snapshot };
  }

  /**
   * The start write is a checkpoint write: the age counts from it. Without this, a relay whose store
   * fails before its first event checkpoint (batched mode writes on a timer) exported no checkpoint
   * age at all, so CheckpointStale could never fire (issue 20 item 1).
   */
  private startWritten({ position, writtenAt }: PersistedStart): void {
    const seconds =
      'token' in position ? positionSeconds(position.token, position.clusterTime) : position.startAt.high;
    this.metrics.checkpointWritten(writtenAt, seconds);
  }

  private async pumpUntilStopped(
    source: ItemSource,
    sink: KafkaSink,
    checkpointer: Checkpointer,
  ): Promise<'snapshot-again' | void> {
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
      onFatal: (error) => {
        const exit = exitForPublishFailure(error);
        this.fail(exit, exit.exitCode === ExitCode.lease);
      },
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
          if (config.relay.snapshot === 'when-needed') {
            logger.error(
              { err: error.cause, lostPosition: describePosition(error.position) },
              'change stream history lost; RELAY_SNAPSHOT=when-needed: taking a new stream position and copying the watched collections again, then streaming from it',
            );
            this.metrics.streamRestarts.inc({ reason: 'history-lost' });
            return 'snapshot-again';
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
        if (error instanceof UnreadableEventError) {
          this.fail(new UnreadableEventExit(config.derived.checkpointId, error.message), false);
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

  /**
   * Drain, stop the sink, write the last safe checkpoint — all within RELAY_SHUTDOWN_TIMEOUT_MS of the
   * stop request, whatever hangs (see shutdownBudget). Returns whether the checkpointer is fully
   * stopped (no write in flight), i.e. whether the lease may be released.
   */
  private async shutdown(source: ItemSource, sink: KafkaSink, checkpointer: Checkpointer): Promise<boolean> {
    const pump = this.pump!;
    pump.stop();
    await source.close();
    const leaseLost = this.fatal?.exitCode === ExitCode.lease;
    // Records Kafka refused will never be acknowledged: no point waiting for them.
    const gaveUp = leaseLost || this.fatal?.exitCode === ExitCode.kafkaRefused;
    const budget = shutdownBudget(this.stopDeadline, this.config, gaveUp);
    const drainedInTime = await raceDeadline(pump.drained(), budget.drainUntil);
    // The sink gives up at its deadline; a produce request stuck beyond it is not waited for either.
    const sinkDeadline = Date.now() + Math.max(0, budget.drainUntil - performance.now());
    await raceDeadline(sink.stop(sinkDeadline), budget.drainUntil);
    const checkpointUntil =
      gaveUp && !leaseLost ? performance.now() + this.config.checkpoint.timeoutMs : budget.checkpointUntil;
    const flushed = leaseLost ? false : await raceDeadline(checkpointer.stop(), checkpointUntil);
    this.logger.info(
      {
        drained: drainedInTime,
        abandonedInFlight: pump.window.inFlight,
        checkpoint: checkpointer.persisted?.token._data ?? null,
        finalCheckpointWritten: flushed,
      },
      drainedInTime && flushed
        ? 'stopped: every read event acknowledged and checkpointed'
        : 'stopped at the shutdown timeout; events after the checkpoint will be re-read after restart',
    );
    return flushed;
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
    if (this.fatal || this.finished) return;
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

  /**
   * Exactly-once: the transactional sink starts from this run's start and snapshot, committed in a
   * transaction of its own. A failure here is the sink's (fenced, refused): the relay exits with it.
   */
  private async commitStart(
    sink: TransactionalKafkaSink,
    started: ConcreteStart,
    snapshot: PreparedSnapshot | null,
  ): Promise<void> {
    const token = 'startAfter' in started ? started.startAfter : null;
    sink.begin(
      { token, clusterTime: token ? clusterTimeOfToken(token) : null },
      snapshot ? { planId: snapshot.plan.id, cursor: snapshot.plan.cursor, streamStarted: false } : null,
    );
    await sink.commitPosition().catch((error: unknown) => {
      throw exitForPublishFailure(error);
    });
  }

  /** Kafka may be down when we start: keep trying (readiness stays 503) until it answers or we stop. */
  private async connectSink(owner: string): Promise<KafkaSink | null> {
    const sink = await connectSinkWhenKafkaAnswers({
      owner,
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      mayProduce: () => this.lease?.mayPublish() ?? false,
      keepTrying: () => !this.stopRequested && !this.fatal,
      pause: (ms) => Promise.race([sleep(ms), new Promise<void>((resolve) => (this.wakeStop = resolve))]),
    });
    this.sink = sink;
    return sink;
  }

  private readiness(): { ready: boolean; detail: Record<string, boolean> } {
    const detail = {
      changeStreamOpen: this.streamOpen,
      kafkaConnected: this.sink?.isHealthy ?? false,
      leaseHeld: this.lease?.mayPublish() ?? false,
      checkpointStore: this.store?.healthy ?? false,
    };
    return { ready: !this.stopRequested && Object.values(detail).every(Boolean), detail };
  }
}

/** Cluster-time seconds of a checkpoint position: its token's time, else its last event's. */
function positionSeconds(token: { _data: string }, clusterTime: Timestamp | null | undefined): number | null {
  return clusterTimeOfToken(token)?.high ?? clusterTime?.high ?? null;
}

/** Whether `work` finished before `deadline` (monotonic, performance.now()). */
async function raceDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>(
    (resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()))),
  );
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
