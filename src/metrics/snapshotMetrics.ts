/**
 * A snapshot's progress (src/snapshot/) as metrics, moved by each checkpoint write of its cursor — so
 * they count documents Kafka acknowledged and the checkpoint holds, the ones a restart does not copy
 * again. No samples before a snapshot runs.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { MetricName } from './names.js';

export class SnapshotMetrics {
  private readonly documents: Counter;
  private readonly collections: Gauge<'state'>;
  private readonly remaining: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.documents = new Counter({
      name: MetricName.snapshotDocumentsTotal,
      help: 'Documents a snapshot copied to Kafka and checkpointed (this process).',
      registers,
    });
    this.collections = new Gauge({
      name: MetricName.snapshotCollections,
      help: 'Collections of the current (or last) snapshot, by state: done or total.',
      labelNames: ['state'],
      registers,
    });
    this.remaining = new Gauge({
      name: MetricName.snapshotRemainingDocuments,
      help: 'Estimated documents the current snapshot still has to copy (from estimatedDocumentCount when it started).',
      registers,
    });
  }

  progress(p: {
    copiedNow: number;
    collectionsDone: number;
    collectionsTotal: number;
    remaining: number;
  }): void {
    if (p.copiedNow > 0) this.documents.inc(p.copiedNow);
    this.collections.set({ state: 'done' }, p.collectionsDone);
    this.collections.set({ state: 'total' }, p.collectionsTotal);
    this.remaining.set(p.remaining);
  }
}
