/**
 * A gauge whose value is read when Prometheus scrapes, and which has NO sample while the value is
 * unknown. prom-client's unlabelled gauges always expose a value (0 until set); for lag or checkpoint
 * age, 0 reads as "perfectly healthy", so an unknown value must be absent instead.
 */
import { Gauge, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export class ScrapeTimeGauge extends Gauge {
  private readonly read: () => number | null;

  constructor(name: string, help: string, registers: Registry[], read: () => number | null) {
    super({ name, help, registers });
    this.read = read;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const metric = await super.get();
    const value = this.read();
    return { ...metric, values: value === null || Number.isNaN(value) ? [] : [{ labels: {}, value }] };
  }
}
