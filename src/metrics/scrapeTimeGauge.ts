/**
 * A gauge whose value is read when Prometheus scrapes, and which never reports an unknown value as a
 * number. prom-client's unlabelled gauges always expose a value (0 until set); for lag or checkpoint
 * age, 0 reads as "perfectly healthy", so an unknown value is either absent (no sample) or NaN:
 *  - 'absent' for values that do not exist yet (no change seen, no checkpoint written);
 *  - 'nan' for gauges an alert compares from the start (the oplog window): the series exists as soon
 *    as the relay serves /metrics, so `absent()` never fires on a healthy relay, while every
 *    comparison with NaN is false, so a threshold alert cannot fire on a value that is not known.
 */
import { Gauge, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export class ScrapeTimeGauge extends Gauge {
  private readonly read: () => number | null;
  private readonly unknown: 'absent' | 'nan';

  constructor(
    name: string,
    help: string,
    registers: Registry[],
    read: () => number | null,
    unknown: 'absent' | 'nan' = 'absent',
  ) {
    super({ name, help, registers });
    this.read = read;
    this.unknown = unknown;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const metric = await super.get();
    const value = this.read();
    if (value !== null && !Number.isNaN(value)) return { ...metric, values: [{ labels: {}, value }] };
    return { ...metric, values: this.unknown === 'nan' ? [{ labels: {}, value: Number.NaN }] : [] };
  }
}
