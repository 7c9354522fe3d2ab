/**
 * The relay's Prometheus metrics on one registry (default Node.js process metrics included).
 * Gauges that depend on "now" (lag, checkpoint age) are computed at scrape time, so they stay honest
 * on a quiet stream without a timer.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MetricName } from './names.js';

export class RelayMetrics {
  readonly registry = new Registry();
  readonly events: Counter<'ns' | 'operation_type'>;
  readonly publishLatency: Histogram;
  readonly inFlight: Gauge;
  readonly checkpointWrites: Counter;
  readonly deadLetters: Counter<'reason'>;
  readonly publishErrors: Counter;
  readonly streamRestarts: Counter<'reason'>;
  readonly filtered: Counter<'operation_type'>;
  readonly leaseOwner: Gauge<'owner' | 'checkpoint_id'>;
  readonly partitionCountChanges: Counter<'topic'>;
  readonly producerResets: Counter<'error'>;
  // Read at scrape time by the gauges below.
  private readonly state = {
    newestClusterTimeSec: null as number | null,
    lastCheckpointAt: null as number | null,
    ready: (): boolean => false,
    sinkStalledMs: (): number => 0,
  };

  constructor(version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.events = new Counter({
      name: MetricName.eventsTotal,
      help: 'Changes published to Kafka and acknowledged.',
      labelNames: ['ns', 'operation_type'],
      registers,
    });
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
    new Gauge({
      name: MetricName.buildInfo,
      help: 'Build information.',
      labelNames: ['version'],
      registers,
    }).set({ version }, 1);
    const state = this.state;
    new Gauge({
      name: MetricName.sourceLagSeconds,
      help: 'Now minus the cluster time of the newest acknowledged change (or heartbeat position).',
      registers,
      collect() {
        if (state.newestClusterTimeSec !== null)
          this.set(Math.max(0, Date.now() / 1000 - state.newestClusterTimeSec));
      },
    });
    new Gauge({
      name: MetricName.checkpointAgeSeconds,
      help: 'Seconds since the checkpoint was last written.',
      registers,
      collect() {
        if (state.lastCheckpointAt !== null) this.set((Date.now() - state.lastCheckpointAt) / 1000);
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

  checkpointWritten(at: Date): void {
    this.checkpointWrites.inc();
    this.state.lastCheckpointAt = at.getTime();
  }

  /** The readiness probe, also exported as a gauge. */
  setReadinessProbe(probe: () => boolean): void {
    this.state.ready = probe;
  }

  setSinkStallProbe(probe: () => number): void {
    this.state.sinkStalledMs = probe;
  }
}
