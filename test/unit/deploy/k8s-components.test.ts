/**
 * What operators get from the rendered manifests: a base that needs no CRDs, one way of scraping per
 * relay, a ConfigMap whose name follows its content, secrets from Secrets, the recommended labels,
 * optional components (NetworkPolicy, Kafka/MongoDB TLS, prometheus-operator) and a CLI Job that runs
 * with exactly the relay's configuration. Rendered by test/support/kustomize.ts.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  dig,
  envSource,
  kindOf,
  nameOf,
  RELAY_ENV_VARS,
  RELAY_SECRET_ENV_VARS,
  renderKustomization,
  repoPath,
  kustomizationRoots,
  readYamlTree,
} from '../../support/deploy-check.js';

const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string };

function render(dir: string): unknown[] {
  return renderKustomization(dir).documents.map((d) => d.value);
}

function only(objects: unknown[], kind: string): unknown[] {
  return objects.filter((o) => kindOf(o) === kind);
}

function relayContainer(workload: unknown): unknown {
  return (dig(workload, 'spec', 'template', 'spec', 'containers') as unknown[])[0];
}

const RECOMMENDED = ['name', 'instance', 'version', 'part-of', 'managed-by'].map((l) => `app.kubernetes.io/${l}`);

describe('Kubernetes components and overlays (rendered)', function () {
  this.timeout(60_000);
  const base = render('deploy/k8s/base');
  const production = render('deploy/k8s/overlays/example-production');

  it('renders the base with core kinds only, so it applies without the prometheus-operator', () => {
    expect(base.map((o) => `${String(dig(o, 'apiVersion'))} ${kindOf(o) ?? ''}`).sort()).to.deep.equal([
      'apps/v1 Deployment',
      'v1 ConfigMap',
      'v1 Service',
    ]);
  });

  it('scrapes each relay one way only: prometheus.io annotations, or a ServiceMonitor without them', () => {
    for (const root of kustomizationRoots(readYamlTree('deploy/k8s'))) {
      const objects = render(root);
      const monitors = only(objects, 'ServiceMonitor');
      for (const deployment of only(objects, 'Deployment')) {
        const annotated = dig(deployment, 'spec', 'template', 'metadata', 'annotations', 'prometheus.io/scrape') === 'true';
        expect(annotated !== monitors.length > 0, `${root}: ${nameOf(deployment)}`).to.equal(true);
      }
    }
    expect(only(production, 'ServiceMonitor')).to.have.lengthOf(1);
    expect(only(production, 'PrometheusRule')).to.have.lengthOf(1);
  });

  it('generates the settings ConfigMap with a content hash in its name, so a change rolls the pod', () => {
    const name = (objects: unknown[]): string => {
      const ref = dig(relayContainer(only(objects, 'Deployment')[0]), 'envFrom') as unknown[];
      const configMap = String(dig(ref[0], 'configMapRef', 'name'));
      expect(only(objects, 'ConfigMap').map(nameOf), 'the referenced ConfigMap is rendered').to.include(configMap);
      return configMap;
    };
    const original = name(base);
    expect(original).to.match(/^mongo-kafka-relay-config-[a-z0-9]{10}$/);
    expect(name(render('test/fixtures/deploy/config-change'))).to.not.equal(original);
    expect(name(render('deploy/k8s/base'))).to.equal(original);
  });

  it('sets only documented settings in the ConfigMap, and takes every secret from the Secret', () => {
    for (const objects of [base, production]) {
      for (const configMap of only(objects, 'ConfigMap')) {
        const keys = Object.keys(dig(configMap, 'data') as object);
        expect(keys.filter((k) => !RELAY_ENV_VARS.includes(k))).to.deep.equal([]);
        expect(keys.filter((k) => RELAY_SECRET_ENV_VARS.includes(k))).to.deep.equal([]);
      }
      const container = relayContainer(only(objects, 'Deployment')[0]);
      for (const variable of RELAY_SECRET_ENV_VARS) {
        expect(envSource(objects, container, variable), variable).to.deep.include({
          from: 'secret',
          name: 'mongo-kafka-relay-secrets',
          key: variable,
        });
      }
    }
  });

  it('labels every object with the recommended labels, and keeps version and managed-by out of selectors', () => {
    for (const objects of [base, production]) {
      for (const object of objects) {
        const labels = dig(object, 'metadata', 'labels') as Record<string, string>;
        expect(Object.keys(labels ?? {}), `${kindOf(object) ?? ''} ${nameOf(object)}`).to.include.members(RECOMMENDED);
        expect(labels['app.kubernetes.io/version']).to.equal(pkg.version);
        expect(labels['app.kubernetes.io/managed-by']).to.equal('kustomize');
      }
      const deployment = only(objects, 'Deployment')[0];
      const selector = dig(deployment, 'spec', 'selector', 'matchLabels') as Record<string, string>;
      expect(selector).to.deep.equal({
        'app.kubernetes.io/name': 'mongo-kafka-relay',
        'app.kubernetes.io/instance': 'mongo-kafka-relay',
        'app.kubernetes.io/component': 'relay',
      });
      const podLabels = dig(deployment, 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
      expect(podLabels).to.include(selector).and.include({ 'app.kubernetes.io/version': pkg.version });
    }
  });

  it('gives the NetworkPolicy the relay pods and only the metrics port in, DNS, MongoDB and Kafka out', () => {
    const [policy] = only(production, 'NetworkPolicy');
    const pod = dig(only(production, 'Deployment')[0], 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
    expect(pod).to.include(dig(policy, 'spec', 'podSelector', 'matchLabels') as object);
    expect(JSON.stringify(dig(policy, 'spec', 'ingress'))).to.contain('"port":9464');
    const egressPorts = JSON.stringify(dig(policy, 'spec', 'egress'));
    for (const port of [53, 27017, 9092, 9093]) expect(egressPorts).to.contain(`"port":${port}`);
  });

  it('mounts the Kafka and MongoDB TLS Secrets read-only where the settings point', () => {
    const deployment = only(production, 'Deployment')[0];
    const container = relayContainer(deployment);
    const mounts = dig(container, 'volumeMounts') as { name: string; mountPath: string; readOnly?: boolean }[];
    const configMap = only(production, 'ConfigMap')[0];
    const data = dig(configMap, 'data') as Record<string, string>;
    expect(data).to.include({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512' });
    for (const key of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE']) {
      const mount = mounts.find((m) => data[key]?.startsWith(`${m.mountPath}/`));
      expect(mount, key).to.deep.include({ name: 'kafka-tls', readOnly: true });
    }
    expect(mounts.find((m) => m.name === 'mongodb-tls')).to.deep.include({
      mountPath: '/etc/mongo-kafka-relay/mongodb-tls',
      readOnly: true,
    });
    const volumes = dig(deployment, 'spec', 'template', 'spec', 'volumes') as { name: string; secret?: { secretName: string } }[];
    expect(volumes.map((v) => v.secret?.secretName).filter(Boolean)).to.deep.equal([
      'mongo-kafka-relay-kafka-tls',
      'mongo-kafka-relay-mongodb-tls',
    ]);
    expect(dig(container, 'securityContext', 'readOnlyRootFilesystem')).to.equal(true);
    expect(dig(container, 'image')).to.equal('registry.example.com/platform/mongo-kafka-relay:0.1.0');
    expect(production.every((o) => dig(o, 'metadata', 'namespace') === 'relay')).to.equal(true);
  });

  it('points every runbook URL at the overlay’s base with a replacements entry, keeping the anchors', () => {
    const [rule] = only(production, 'PrometheusRule');
    const urls = (dig(rule, 'spec', 'groups') as { rules: { annotations: { runbook_url: string } }[] }[]).flatMap((g) =>
      g.rules.map((r) => r.annotations.runbook_url),
    );
    expect(urls.length).to.be.greaterThan(10);
    for (const url of urls)
      expect(url).to.match(/^https:\/\/git\.example\.com\/platform\/mongo-kafka-relay\/blob\/v0\.1\.0\/README\.md#runbook-[a-z-]+$/);
  });

  describe('the CLI Job recipe', () => {
    const recipe = render('deploy/k8s/recipes/cli-job');
    const [job] = only(recipe, 'Job');
    const [deployment] = only(recipe, 'Deployment');

    it('runs the CLI command with the relay’s image, configuration, Secret, volumes and security context', () => {
      const cli = dig(job, 'spec', 'template', 'spec', 'containers') as unknown[];
      const relay = relayContainer(deployment);
      for (const field of ['image', 'envFrom', 'env', 'securityContext', 'volumeMounts'])
        expect(dig(cli[0], field), field).to.deep.equal(dig(relay, field));
      for (const field of ['securityContext', 'volumes', 'automountServiceAccountToken'])
        expect(dig(job, 'spec', 'template', 'spec', field), field).to.deep.equal(dig(deployment, 'spec', 'template', 'spec', field));
      expect(dig(cli[0], 'args')).to.deep.equal(['token', 'show', '--json']);
      expect(dig(job, 'spec', 'template', 'spec', 'restartPolicy')).to.equal('Never');
      expect(dig(job, 'spec', 'backoffLimit')).to.equal(0);
    });

    it('is the only object selected by app.kubernetes.io/component=cli, so applying it leaves the relay alone', () => {
      const selected = recipe.filter((o) => dig(o, 'metadata', 'labels', 'app.kubernetes.io/component') === 'cli');
      expect(selected).to.deep.equal([job]);
      expect(path.basename(String(dig(job, 'metadata', 'name')))).to.equal('mongo-kafka-relay-cli');
    });
  });
});
