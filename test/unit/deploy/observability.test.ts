/**
 * The Grafana dashboard and the Prometheus alerts may only read metrics the relay exports
 * (catalogue in test/support/deploy-check.ts), and every alert links to a README runbook.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  alertRules,
  catalogMetricFor,
  dashboardExpressions,
  dig,
  isKnownSeries,
  readYamlTree,
  repoPath,
  RUNBOOK_BASE_URL,
  runbookAnchors,
  seriesInPromQL,
  type AlertRule,
} from '../../support/deploy-check.js';
import { alertDocs, alertsReferenceMarkdown, ALERTS_FILE } from '../../../scripts/alertsReference.js';
import { MetricName } from '../../../src/metrics/names.js';

const dashboard: unknown = JSON.parse(readFileSync(repoPath('deploy/grafana/mongo-kafka-relay.json'), 'utf8'));
const readme = readFileSync(repoPath('README.md'), 'utf8');
const alertFiles = readYamlTree('deploy/prometheus');
const rules: AlertRule[] = alertFiles.flatMap((f) => f.documents.flatMap((d) => alertRules(d.value)));

function unknownSeries(exprs: readonly { where: string; expr: string }[]): string[] {
  return exprs.flatMap(({ where, expr }) =>
    seriesInPromQL(expr)
      .filter((s) => !isKnownSeries(s))
      .map((s) => `${where}: unknown metric ${s} in ${expr}`),
  );
}

function metricsUsed(exprs: readonly { expr: string }[]): Set<string> {
  return new Set(exprs.flatMap(({ expr }) => seriesInPromQL(expr).flatMap((s) => catalogMetricFor(s)?.name ?? [])));
}

describe('observability artefacts', () => {
  describe('PromQL series extraction', () => {
    it('finds the metric names and ignores functions, labels, keywords, numbers and Grafana variables', () => {
      expect(
        seriesInPromQL(
          'histogram_quantile(0.99, sum by (job, le) (rate(mongo_kafka_relay_publish_latency_seconds_bucket{job=~"$job"}[$__rate_interval])))',
        ),
      ).to.deep.equal(['mongo_kafka_relay_publish_latency_seconds_bucket']);
      expect(
        seriesInPromQL(
          '(max by (namespace, job) (mongo_kafka_relay_checkpoint_age_seconds) > 300) and on (namespace, job) (sum(rate(mongo_kafka_relay_events_total[5m])) > 0)',
        ),
      ).to.deep.equal(['mongo_kafka_relay_checkpoint_age_seconds', 'mongo_kafka_relay_events_total']);
      expect(seriesInPromQL('absent(up{job=~"mongo-kafka-relay.*"}) offset 1h')).to.deep.equal(['up']);
      expect(seriesInPromQL('label_values(mongo_kafka_relay_build_info, job)')).to.deep.equal(['mongo_kafka_relay_build_info']);
    });

    it('maps histogram series to their metric but rejects misspelled names and suffixes on non-histograms', () => {
      expect(catalogMetricFor('mongo_kafka_relay_publish_latency_seconds_count')?.name).to.equal(
        'mongo_kafka_relay_publish_latency_seconds',
      );
      expect(isKnownSeries('mongo_kafka_relay_event_total')).to.equal(false);
      expect(isKnownSeries('mongo_kafka_relay_source_lag_seconds_bucket')).to.equal(false);
      expect(unknownSeries([{ where: 'test', expr: 'rate(mongo_kafka_relay_publish_error_total[5m])' }])).to.deep.equal([
        'test: unknown metric mongo_kafka_relay_publish_error_total in rate(mongo_kafka_relay_publish_error_total[5m])',
      ]);
    });
  });

  it('catalogues every metric the relay exports (src/metrics/names.ts)', () => {
    for (const name of Object.values(MetricName)) expect(catalogMetricFor(name)?.name, name).to.equal(name);
  });

  describe('the Grafana dashboard', () => {
    const exprs = dashboardExpressions(dashboard);

    it('queries only metrics the relay exports (or Prometheus’ own up)', () => {
      expect(exprs.length).to.be.greaterThanOrEqual(10);
      expect(unknownSeries(exprs)).to.deep.equal([]);
    });

    it('charts events by namespace and operation, lag, publish latency, checkpoint age, in-flight, dead letters, restarts and publish errors', () => {
      const used = metricsUsed(exprs);
      expect([...used]).to.include.members([
        'mongo_kafka_relay_events_total',
        'mongo_kafka_relay_source_lag_seconds',
        'mongo_kafka_relay_publish_latency_seconds',
        'mongo_kafka_relay_checkpoint_age_seconds',
        'mongo_kafka_relay_in_flight_events',
        'mongo_kafka_relay_dead_letter_total',
        'mongo_kafka_relay_stream_restarts_total',
        'mongo_kafka_relay_publish_errors_total',
        'mongo_kafka_relay_oplog_window_seconds',
        'mongo_kafka_relay_oplog_headroom_seconds',
        'mongo_kafka_relay_checkpoint_write_failures_total',
      ]);
      const events = exprs.find((e) => e.expr.includes('mongo_kafka_relay_events_total'));
      expect(events?.expr).to.match(/by \(ns, operation_type\)/);
      const latency = exprs.filter((e) => e.expr.includes('publish_latency_seconds_bucket')).map((e) => e.expr);
      expect(latency.some((e) => e.startsWith('histogram_quantile(0.5,'))).to.equal(true);
      expect(latency.some((e) => e.startsWith('histogram_quantile(0.99,'))).to.equal(true);
    });

    it('uses the datasource variable in every panel and gives every panel a unique id', () => {
      const panels: unknown[] = Array.isArray(dig(dashboard, 'panels')) ? (dig(dashboard, 'panels') as unknown[]) : [];
      const ids = panels.map((p) => dig(p, 'id'));
      expect(new Set(ids).size).to.equal(panels.length);
      for (const panel of panels) expect(dig(panel, 'datasource', 'uid'), String(dig(panel, 'title'))).to.equal('${datasource}');
    });
  });

  describe('the Prometheus alerts', () => {
    it('parses as a rule file with alerts', () => {
      expect(alertFiles.flatMap((f) => f.errors)).to.deep.equal([]);
      expect(rules.length).to.be.greaterThanOrEqual(6);
    });

    it('read only metrics the relay exports (or Prometheus’ own up)', () => {
      expect(unknownSeries(rules.map((r) => ({ where: r.alert, expr: r.expr })))).to.deep.equal([]);
    });

    it('cover down, not ready, lease, lag, checkpoint, oplog headroom, publish errors, dead letters and restarts', () => {
      expect([...metricsUsed(rules)]).to.include.members([
        'mongo_kafka_relay_build_info',
        'mongo_kafka_relay_ready',
        'mongo_kafka_relay_lease_owner',
        'mongo_kafka_relay_source_lag_seconds',
        'mongo_kafka_relay_checkpoint_age_seconds',
        'mongo_kafka_relay_checkpoint_write_failures_total',
        'mongo_kafka_relay_oplog_headroom_seconds',
        'mongo_kafka_relay_oplog_window_seconds',
        'mongo_kafka_relay_publish_errors_total',
        'mongo_kafka_relay_dead_letter_total',
        'mongo_kafka_relay_stream_restarts_total',
      ]);
      const lag = rules.find((r) => r.alert === 'MongoKafkaRelayLagHigh');
      expect(lag?.expr).to.contain('mongo_kafka_relay_source_lag_seconds');
      expect(lag?.for).to.equal('5m');
    });

    it('never select on job, whose value depends on how Prometheus scrapes the relay', () => {
      for (const rule of rules) expect(rule.expr, rule.alert).to.not.match(/\bjob\b/);
      const down = rules.find((r) => r.alert === 'MongoKafkaRelayDown');
      // Named by checkpoint_id (which survives a pod's new IP), not by the scrape target.
      expect(down?.expr).to.match(/group by \(namespace, checkpoint_id\)/);
      expect(down?.expr).to.contain('unless');
    });

    it('fire CheckpointStale on the checkpoint age alone, so it also fires in serial mode where reading stops', () => {
      const stale = rules.find((r) => r.alert === 'MongoKafkaRelayCheckpointStale');
      expect(seriesInPromQL(stale?.expr ?? '')).to.deep.equal(['mongo_kafka_relay_checkpoint_age_seconds']);
    });

    it('warn about oplog headroom while a quarter of the window is left, before history is lost', () => {
      const headroom = rules.find((r) => r.alert === 'MongoKafkaRelayOplogHeadroomLow');
      expect(headroom?.expr).to.equal(
        'mongo_kafka_relay_oplog_headroom_seconds < 0.25 * mongo_kafka_relay_oplog_window_seconds',
      );
      expect(headroom?.labels.severity).to.equal('critical');
    });

    it('link every alert to a README runbook anchor with an absolute URL, and every runbook has an alert', () => {
      const anchors = runbookAnchors(readme);
      expect(anchors.length).to.be.greaterThanOrEqual(10);
      const linked = new Set<string>();
      for (const rule of rules) {
        const url = String(rule.annotations.runbook_url);
        expect(url.startsWith(`${RUNBOOK_BASE_URL}#`), `${rule.alert}: ${url}`).to.equal(true);
        const anchor = url.slice(RUNBOOK_BASE_URL.length + 1);
        expect(anchor, rule.alert).to.be.oneOf(anchors);
        linked.add(anchor);
      }
      expect([...linked].sort()).to.deep.equal([...anchors].sort());
    });

    it('agree with the README alert table (npm run docs:alerts -- --write)', () => {
      const text = readFileSync(repoPath(ALERTS_FILE), 'utf8');
      const section = /<!-- alerts-reference:start -->\n([\s\S]*?)\n<!-- alerts-reference:end -->/.exec(readme)?.[1];
      expect(section).to.equal(alertsReferenceMarkdown(text));
      expect(alertDocs(text).map((a) => a.alert)).to.deep.equal(rules.map((r) => r.alert));
    });

    it('keep templates out of description, which is the README text', () => {
      for (const rule of rules) expect(String(rule.annotations.description), rule.alert).to.not.contain('{{');
    });

    it('give every alert a severity and a summary', () => {
      for (const rule of rules) {
        expect(rule.labels.severity, rule.alert).to.be.oneOf(['warning', 'critical']);
        expect(rule.annotations.summary, rule.alert).to.be.a('string');
      }
    });
  });
});
