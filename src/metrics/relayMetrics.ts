/**
 * The relay's Prometheus metrics on one registry (default Node.js process metrics included).
 * Gauges that depend on "now" (lag, checkpoint age, oplog headroom) are computed at scrape time, so
 * they stay honest on a quiet stream without a timer, and they have NO sample until their inputs are
 * known: a 0 would read as "healthy" to an alert.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MetricName } from './names.js';
import { NamespaceLabel } from './nsLabel.js';
import type { OplogBounds } from './oplogWindow.js';
import { ScrapeTimeGauge } from './scrapeTimeGauge.js';
import { SnapshotMetrics } from './snapshotMetrics.js';

export interface RelayMetricsOptions {
  /** Most distinct `ns` label values of events_total (0: the label is dropped). */
  nsLabelLimit: number;
  /** Names this relay in build_info, so alerts can tell relays apart however they are scraped. */
  checkpointId: string;
}

/** events_total with its `ns` label bounded (see nsLabel.ts); same `inc` as a prom-client counter. */
export class EventsCounter {
  constructor(
    private readonly counter: Counter<'ns' | 'operation_type'>,
    private readonly ns: NamespaceLabel,
  ) {}

  inc(labels: { ns: string; operation_type: string }, value = 1): void {
    this.counter.inc({ ns: this.ns.valueFor(labels.ns), operation_type: labels.operation_type }, value);
  }
}

export class RelayMetrics {
  readonly registry = new Registry();
  readonly events: EventsCounter;
  readonly publishLatency: Histogram;
  readonly inFlight: Gauge;
  readonly checkpointWrites: Counter;
  readonly checkpointWriteFailures: Counter;
  readonly deadLetters: Counter<'reason'>;
  readonly publishErrors: Counter;
  readonly streamRestarts: Counter<'reason'>;
  readonly filtered: Counter<'operation_type'>;
  readonly leaseOwner: Gauge<'owner' | 'checkpoint_id'>;
  readonly partitionCountChanges: Counter<'topic'>;
  readonly producerResets: Counter<'error'>;
  readonly mongodbTransactionsSplit: Counter<'reason'>;
  readonly kafkaTransactionRecords: Histogram;
  readonly kafkaTransactionCommit: Histogram;
  private readonly readerHeap: Gauge<'kind'>;
  readonly snapshot = new SnapshotMetrics(this.registry);
  // Read at scrape time by the gauges below.
  private readonly state = {
    newestClusterTimeSec: null as number | null,
    lastCheckpointAt: null as number | null,
    checkpointClusterTimeSec: null as number | null,
    oplog: null as OplogBounds | null,
    ready: (): boolean => false,
    sinkStalledMs: (): number => 0,
  };

  constructor(version: string, options: RelayMetricsOptions = { nsLabelLimit: 100, checkpointId: '' }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.events = new EventsCounter(
      new Counter({
        name: MetricName.eventsTotal,
        help: `Changes published to Kafka and acknowledged (ns: the first ${options.nsLabelLimit} namespaces, then _other).`,
        labelNames: ['ns', 'operation_type'],
        registers,
      }),
      new NamespaceLabel(options.nsLabelLimit),
    );
    this.publishLatency = new Histogram({
      name: MetricName.publishLatencySeconds,
      help: 'Time from reading a change to Kafka acknowledging it.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.inFlight = new Gauge({
      name: MetricName.inFlightEvents,
      help: 'Changes read and not yet acknowledged.',
      registers,
    });
    this.checkpointWrites = new Counter({
      name: MetricName.checkpointWritesTotal,
      help: 'Checkpoint writes.',
      registers,
    });
    this.checkpointWriteFailures = new Counter({
      name: MetricName.checkpointWriteFailuresTotal,
      help: 'Failed checkpoint writes (each retried; a lost lease is fatal).',
      registers,
    });
    this.deadLetters = new Counter({
      name: MetricName.deadLetterTotal,
      help: 'Changes sent to the dead-letter topic instead of their topic.',
      labelNames: ['reason'],
      registers,
    });
    this.publishErrors = new Counter({
      name: MetricName.publishErrorsTotal,
      help: 'Failed produce requests (each retried).',
      registers,
    });
    this.streamRestarts = new Counter({
      name: MetricName.streamRestartsTotal,
      help: 'Change stream reopenings, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.filtered = new Counter({
      name: MetricName.filteredEventsTotal,
      help: 'Changes filtered out by the relay (RELAY_OPERATION_TYPES); they still advance the checkpoint.',
      labelNames: ['operation_type'],
      registers,
    });
    this.leaseOwner = new Gauge({
      name: MetricName.leaseOwner,
      help: '1 for the relay that owns the checkpoint lease, labelled with the owner seen by this process.',
      labelNames: ['owner', 'checkpoint_id'],
      registers,
    });
    this.partitionCountChanges = new Counter({
      name: MetricName.partitionCountChangesTotal,
      help: 'Partition count changes seen on a topic in use (documents then hash to other partitions).',
      labelNames: ['topic'],
      registers,
    });
    this.producerResets = new Counter({
      name: MetricName.producerResetsTotal,
      help: 'Idempotent producers re-created after the broker lost or fenced their state, by error.',
      labelNames: ['error'],
      registers,
    });
    this.mongodbTransactionsSplit = new Counter({
      name: MetricName.mongodbTransactionsSplitTotal,
      help: 'Exactly-once: MongoDB transactions whose changes were split across Kafka transactions (reason: in-flight-limit, transaction-timeout), so read_committed consumers saw them in parts.',
      labelNames: ['reason'],
      registers,
    });
    // Exactly-once: the size of a transaction is what its throughput depends on (each commit costs the
    // broker a fixed amount of work and a round trip), so operators sizing RELAY_MAX_IN_FLIGHT see it here.
    this.kafkaTransactionRecords = new Histogram({
      name: MetricName.kafkaTransactionRecords,
      help: 'Exactly-once: change records per committed Kafka transaction (_count: transactions committed, including position-only ones with 0 records); stays at 0 in at-least-once mode.',
      buckets: [0, 1, 10, 100, 250, 500, 1000, 2000, 4000, 8000, 16000],
      registers,
    });
    this.kafkaTransactionCommit = new Histogram({
      name: MetricName.kafkaTransactionCommitSeconds,
      help: "Exactly-once: time to commit a Kafka transaction (sending its position record, then the coordinator's EndTxn answer).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.readerHeap = new Gauge({
      name: MetricName.readerThreadHeapBytes,
      help: "V8 heap of the reader thread (kind: used, total), which nodejs_heap_* (the main thread's) leaves out; absent with RELAY_READER_THREAD=false.",
      labelNames: ['kind'],
      registers,
    });
    new Gauge({
      name: MetricName.buildInfo,
      help: 'Build information, and the checkpoint id that names this relay (one per change stream).',
      labelNames: ['version', 'checkpoint_id'],
      registers,
    }).set({ version, checkpoint_id: options.checkpointId }, 1);
    const state = this.state;
    const nowSec = (): number => Date.now() / 1000;
    new ScrapeTimeGauge(
      MetricName.sourceLagSeconds,
      'Now minus the cluster time of the newest acknowledged change (or heartbeat position); absent until known.',
      registers,
      () => (state.newestClusterTimeSec === null ? null : Math.max(0, nowSec() - state.newestClusterTimeSec)),
    );
    new ScrapeTimeGauge(
      MetricName.checkpointAgeSeconds,
      'Seconds since the checkpoint was last written (by this relay or, until its first write, by its predecessor); absent while no checkpoint exists.',
      registers,
      () => (state.lastCheckpointAt === null ? null : (Date.now() - state.lastCheckpointAt) / 1000),
    );
    new ScrapeTimeGauge(
      MetricName.oplogWindowSeconds,
      'Cluster time between the oldest and the newest oplog entry; NaN until read and while the oplog cannot be read.',
      registers,
      () => (state.oplog === null ? null : state.oplog.newest - state.oplog.oldest),
      'nan',
    );
    new ScrapeTimeGauge(
      MetricName.oplogHeadroomSeconds,
      "Cluster time between the oldest oplog entry and the checkpoint's position: history is lost when it reaches 0; NaN while either is unknown.",
      registers,
      () =>
        state.oplog === null || state.checkpointClusterTimeSec === null
          ? null
          : state.checkpointClusterTimeSec - state.oplog.oldest,
      'nan',
    );
    new Gauge({
      name: MetricName.oplogWindowKnown,
      help: '1 while the last oplog window reading succeeded, 0 before the first and when it cannot be read (see the log for why).',
      registers,
      collect() {
        this.set(state.oplog === null ? 0 : 1);
      },
    });
    new Gauge({
      name: MetricName.sinkStalledSeconds,
      help: 'Seconds records have been waiting for Kafka without any acknowledgement (0 while none wait).',
      registers,
      collect() {
        this.set(state.sinkStalledMs() / 1000);
      },
    });
    new Gauge({
      name: MetricName.up,
      help: '1 while the change stream is open and Kafka connected (what /readyz answers).',
      registers,
      collect() {
        this.set(state.ready() ? 1 : 0);
      },
    });
  }

  observeClusterTime(seconds: number): void {
    const s = this.state;
    if (s.newestClusterTimeSec === null || seconds > s.newestClusterTimeSec) s.newestClusterTimeSec = seconds;
  }

  /** A checkpoint this relay wrote; `clusterTimeSec` is its position (null when unknown). */
  checkpointWritten(at: Date, clusterTimeSec: number | null): void {
    this.checkpointWrites.inc();
    this.checkpointFound(at, clusterTimeSec);
  }

  /** The checkpoint found at start (written by a predecessor): its age counts from its write. */
  checkpointFound(at: Date | null, clusterTimeSec: number | null): void {
    if (at) this.state.lastCheckpointAt = at.getTime();
    if (clusterTimeSec !== null) this.state.checkpointClusterTimeSec = clusterTimeSec;
  }

  oplogBounds(bounds: OplogBounds | null): void {
    this.state.oplog = bounds;
  }

  /** The readiness probe, also exported as a gauge. */
  setReadinessProbe(probe: () => boolean): void {
    this.state.ready = probe;
  }

  setSinkStallProbe(probe: () => number): void {
    this.state.sinkStalledMs = probe;
  }

  /** The reader thread's V8 heap, as it reported it. */
  setReaderHeap(heap: { used: number; total: number }): void {
    this.readerHeap.set({ kind: 'used' }, heap.used);
    this.readerHeap.set({ kind: 'total' }, heap.total);
  }
}
