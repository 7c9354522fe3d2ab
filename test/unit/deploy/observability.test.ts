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
  RUNBOOK_ANCHORS,
  seriesInPromQL,
  type AlertRule,
} from '../../support/deploy-check.js';

const dashboard: unknown = JSON.parse(readFileSync(repoPath('deploy/grafana/mongo-kafka-relay.json'), 'utf8'));
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

    it('cover relay down, lag, checkpoint staleness, dead letters and stream restarts', () => {
      const exprs = rules.map((r) => r.expr);
      expect(exprs.some((e) => /\bup\b.*== 0/.test(e))).to.equal(true);
      expect(exprs.some((e) => /^absent\(up\b/.test(e))).to.equal(true);
      expect([...metricsUsed(rules)]).to.include.members([
        'mongo_kafka_relay_source_lag_seconds',
        'mongo_kafka_relay_checkpoint_age_seconds',
        'mongo_kafka_relay_dead_letter_total',
        'mongo_kafka_relay_stream_restarts_total',
      ]);
      const lag = rules.find((r) => r.alert === 'MongoKafkaRelayLagHigh');
      expect(lag?.expr).to.contain('mongo_kafka_relay_source_lag_seconds');
      expect(lag?.for).to.equal('5m');
    });

    it('link every alert to one of the README runbook anchors, and every runbook has an alert', () => {
      const linked = new Set<string>();
      for (const rule of rules) {
        const url = rule.annotations.runbook_url;
        expect(url, rule.alert).to.be.a('string');
        const match = /^README\.md#(runbook-[a-z-]+)$/.exec(String(url));
        expect(match?.[1], `${rule.alert}: ${String(url)}`).to.be.oneOf([...RUNBOOK_ANCHORS]);
        if (match?.[1] !== undefined) linked.add(match[1]);
      }
      expect([...linked].sort()).to.deep.equal([...RUNBOOK_ANCHORS].sort());
    });

    it('give every alert a severity and a summary', () => {
      for (const rule of rules) {
        expect(rule.labels.severity, rule.alert).to.be.oneOf(['warning', 'critical']);
        expect(rule.annotations.summary, rule.alert).to.be.a('string');
      }
    });
  });
});
