/**
 * CI guard for the relay's one hard deployment rule: one change stream, one reader. Every
 * Deployment under deploy/ must run exactly one replica with the Recreate strategy, and nothing
 * may autoscale it — in the raw files (patches and kustomize `replicas:` included) and, where
 * kubectl is installed, in every rendered kustomization.
 */
import { expect } from 'chai';
import {
  checkRelayIsolation,
  checkRelayPodWiring,
  checkSingleReplica,
  kustomizationRoots,
  readYamlTree,
  renderKustomization,
  watchTargetsOverlap,
  type YamlFile,
} from '../../support/deploy-check.js';

const FIXTURES = 'test/fixtures/deploy';

function objectsOf(files: readonly YamlFile[]): unknown[] {
  return files.flatMap((f) => f.documents.map((d) => d.value));
}

describe('single-replica deployment guard', function () {
  this.timeout(60_000);

  describe('the committed deploy/ tree', () => {
    const files = readYamlTree('deploy');

    it('reads every YAML file under deploy/, overlays and patches included', () => {
      const names = files.map((f) => f.file);
      expect(names).to.include.members([
        'deploy/k8s/base/deployment.yaml',
        'deploy/k8s/overlays/split-watch/kustomization.yaml',
        'deploy/k8s/overlays/split-watch/orders/kustomization.yaml',
        'deploy/k8s/components/cli-job/job.yaml',
        'deploy/compose/docker-compose.yml',
        'deploy/prometheus/alerts.yaml',
      ]);
      expect(files.flatMap((f) => f.errors)).to.deep.equal([]);
    });

    it('finds the relay Deployment, so the guard below is not vacuous', () => {
      const { deployments } = checkSingleReplica(files);
      expect(deployments.map((d) => `${d.where} ${d.name}`)).to.deep.equal([
        'deploy/k8s/base/deployment.yaml mongo-kafka-relay',
      ]);
    });

    it('runs every Deployment with exactly one replica and the Recreate strategy, and autoscales none', () => {
      expect(checkSingleReplica(files).violations).to.deep.equal([]);
    });

    it('wires the base relay pod: grace period above the shutdown timeout, probes, secrets, security context', () => {
      const base = renderKustomization('deploy/k8s/base');
      expect(checkRelayPodWiring('deploy/k8s/base', objectsOf([base]))).to.deep.equal([]);
    });
  });

  describe('every kustomization, rendered', function () {
    const roots = kustomizationRoots(readYamlTree('deploy'));
    const rendered = new Map<string, YamlFile>();

    before(() => {
      for (const root of roots) rendered.set(root, renderKustomization(root));
    });

    it('renders the base and the split-watch overlay', () => {
      expect(roots).to.include.members(['deploy/k8s/base', 'deploy/k8s/overlays/split-watch']);
    });

    it('renders one single-replica Recreate Deployment per relay: one for the base, two for split-watch', () => {
      const count = (root: string): string[] => {
        const output = rendered.get(root);
        if (output === undefined) throw new Error(`not rendered: ${root}`);
        const report = checkSingleReplica([output]);
        expect(report.violations, root).to.deep.equal([]);
        return report.deployments.map((d) => d.name).sort();
      };
      expect(count('deploy/k8s/base')).to.deep.equal(['mongo-kafka-relay']);
      expect(count('deploy/k8s/overlays/split-watch')).to.deep.equal([
        'mongo-kafka-relay-catalog',
        'mongo-kafka-relay-orders',
      ]);
      for (const [root, output] of rendered) expect(checkSingleReplica([output]).violations, root).to.deep.equal([]);
    });

    it('gives each split-watch relay its own checkpoint id, a disjoint watch set and its own pods', () => {
      for (const [root, output] of rendered) {
        const objects = objectsOf([output]);
        expect(checkRelayIsolation(root, objects), root).to.deep.equal([]);
        expect(checkRelayPodWiring(root, objects), root).to.deep.equal([]);
      }
    });

    it('catches the overlay fixtures after rendering too', () => {
      for (const [fixture, expected] of [
        ['overlay-patch-replicas', 'spec.replicas 3'],
        ['overlay-replicas-field', 'spec.replicas 2'],
        ['overlay-json6902-strategy', 'spec.strategy.type "RollingUpdate"'],
      ] as const) {
        const output = renderKustomization(`${FIXTURES}/${fixture}/overlay`);
        const violations = checkSingleReplica([output]).violations;
        expect(violations, fixture).to.have.lengthOf(1);
        expect(violations[0]).to.contain(`kustomize ${FIXTURES}/${fixture}/overlay`);
        expect(violations[0]).to.contain(`Deployment "relay-${fixture}"`);
        expect(violations[0]).to.contain(expected);
      }
    });
  });

  describe('negative fixtures: the guard fails naming the file, the Deployment and the offending value', () => {
    const cases: { fixture: string; title: string; expected: readonly string[] }[] = [
      {
        fixture: 'replicas-2',
        title: 'rejects a Deployment with two replicas',
        expected: ['replicas-2/deployment.yaml', 'Deployment "relay-replicas-2"', 'spec.replicas 2'],
      },
      {
        fixture: 'replicas-missing',
        title: 'rejects a Deployment that leaves replicas to the default',
        expected: ['replicas-missing/deployment.yaml', 'Deployment "relay-replicas-missing"', 'spec.replicas missing'],
      },
      {
        fixture: 'rolling-update',
        title: 'rejects a Deployment with the RollingUpdate strategy',
        expected: ['rolling-update/deployment.yaml', 'Deployment "relay-rolling-update"', 'spec.strategy.type "RollingUpdate"'],
      },
      {
        fixture: 'missing-strategy',
        title: 'rejects a Deployment without a strategy (it would default to RollingUpdate)',
        expected: ['missing-strategy/deployment.yaml', 'Deployment "relay-missing-strategy"', 'spec.strategy.type missing'],
      },
      {
        fixture: 'with-hpa',
        title: 'rejects a HorizontalPodAutoscaler that targets a relay Deployment',
        expected: ['with-hpa/hpa.yaml', 'HorizontalPodAutoscaler "relay-hpa"', 'Deployment "relay-with-hpa"', 'max replicas 3'],
      },
      {
        fixture: 'multi-document',
        title: 'rejects a bad Deployment hidden in the third document of a multi-document file',
        expected: ['multi-document/relays.yaml (document 3)', 'Deployment "relay-multi-doc"', 'spec.replicas 3'],
      },
      {
        fixture: 'overlay-patch-replicas',
        title: 'rejects an overlay patch file that raises replicas',
        expected: [
          'overlay-patch-replicas/overlay/replicas-patch.yaml',
          'Deployment "relay-overlay-patch-replicas"',
          'sets spec.replicas to 3',
        ],
      },
      {
        fixture: 'overlay-replicas-field',
        title: "rejects an overlay that raises replicas with kustomize's replicas field",
        expected: ['overlay-replicas-field/overlay/kustomization.yaml', '"relay-overlay-replicas-field"', 'count 2'],
      },
      {
        fixture: 'overlay-json6902-strategy',
        title: 'rejects an inline JSON 6902 patch that switches the strategy to RollingUpdate',
        expected: [
          'overlay-json6902-strategy/overlay/kustomization.yaml (inline patch)',
          'Deployment "relay-overlay-json6902-strategy"',
          'replace /spec/strategy/type "RollingUpdate"',
        ],
      },
    ];

    for (const { fixture, title, expected } of cases) {
      it(title, () => {
        const { violations } = checkSingleReplica(readYamlTree(`${FIXTURES}/${fixture}`));
        expect(violations).to.have.lengthOf(1);
        for (const part of expected) expect(violations[0]).to.contain(part);
        expect(violations[0]).to.contain(`${FIXTURES}/${fixture}/`);
      });
    }

    it('rejects a file that is not valid YAML rather than skipping it', () => {
      const broken: YamlFile[] = [
        { file: 'deploy/broken.yaml', documents: [], errors: ['deploy/broken.yaml: not valid YAML: bad indentation'] },
      ];
      expect(checkSingleReplica(broken).violations).to.deep.equal(['deploy/broken.yaml: not valid YAML: bad indentation']);
    });
  });

  describe('relay isolation across several relays', () => {
    it('treats db.coll, db.* and * as overlapping exactly when they share a collection', () => {
      expect(watchTargetsOverlap('shop.orders', 'shop.orders')).to.equal(true);
      expect(watchTargetsOverlap('shop.orders', 'shop.*')).to.equal(true);
      expect(watchTargetsOverlap('catalog.items', '*')).to.equal(true);
      expect(watchTargetsOverlap('shop.orders', 'shop.payments')).to.equal(false);
      expect(watchTargetsOverlap('shop.*', 'catalog.*')).to.equal(false);
      expect(watchTargetsOverlap('shop.orders.archive', 'shop.orders')).to.equal(false);
    });

    it('reports relays that share a checkpoint id, overlap in their watch sets or select each other’s pods', () => {
      const relay = (name: string, watch: string, checkpointId: string): unknown[] => [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-config` }, data: { RELAY_WATCH: watch, RELAY_CHECKPOINT_ID: checkpointId } },
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name },
          spec: {
            selector: { matchLabels: { app: 'relay' } },
            template: {
              metadata: { labels: { app: 'relay' } },
              spec: { containers: [{ name: 'relay', envFrom: [{ configMapRef: { name: `${name}-config` } }] }] },
            },
          },
        },
      ];
      const problems = checkRelayIsolation('rendered', [...relay('a', 'shop.*', 'same'), ...relay('b', 'shop.orders', 'same')]);
      expect(problems.join('\n')).to.contain('share RELAY_CHECKPOINT_ID "same"');
      expect(problems.join('\n')).to.contain('"a" (RELAY_WATCH shop.*) and "b" (RELAY_WATCH shop.orders) overlap');
      expect(problems.join('\n')).to.contain('the selector of Deployment "a" also matches the pods of "b"');
    });
  });
});
