/**
 * Validates the Kubernetes manifests under deploy/k8s (and the PrometheusRule under
 * deploy/prometheus) against the real API schemas:
 *  - built-in kinds: the official Kubernetes OpenAPI schemas, as compiled JSON-schema validators
 *    and generated TypeScript interfaces shipped by the `kubernetes-models` package;
 *  - ServiceMonitor / PrometheusRule: the prometheus-operator CRD schemas from
 *    `@kubernetes-models/prometheus-operator`;
 *  - kustomization files: shape only (kustomize publishes no schema).
 * Unknown fields are errors, as with the API server's strict field validation.
 */
import { expect } from 'chai';
import {
  checkKustomizationShape,
  findCommittedSecrets,
  indexKustomizations,
  isKustomizationFile,
  kustomizationRoots,
  pathKind,
  readYamlTree,
  renderKustomization,
  roleOf,
  schemaTargets,
  validateAgainstSchemas,
  type SchemaTarget,
  type YamlFile,
} from '../../support/deploy-check.js';

const INVALID = 'test/fixtures/deploy/schema-invalid';

function fullTargets(files: readonly YamlFile[]): SchemaTarget[] {
  return files.flatMap((f) => f.documents.map((d) => ({ where: f.file, value: d.value, partial: false })));
}

describe('Kubernetes manifest schemas', function () {
  this.timeout(60_000);

  const k8s = readYamlTree('deploy/k8s');
  const index = indexKustomizations(k8s);

  it('classifies every YAML file under deploy/k8s as a resource, a patch or a kustomization', () => {
    expect(k8s.flatMap((f) => f.errors)).to.deep.equal([]);
    const roles = Object.fromEntries(k8s.map((f) => [f.file, roleOf(f.file, index)]));
    expect(roles).to.include({
      'deploy/k8s/base/deployment.yaml': 'resource',
      'deploy/k8s/components/service-monitor/servicemonitor.yaml': 'resource',
      'deploy/k8s/base/kustomization.yaml': 'kustomization',
      'deploy/k8s/components/kafka-tls/kustomization.yaml': 'kustomization',
      'deploy/k8s/components/kafka-tls/mount-patch.yaml': 'patch',
      'deploy/k8s/components/mongodb-tls/mount-patch.yaml': 'patch',
    });
  });

  it('validates every resource under deploy/k8s against the official Kubernetes OpenAPI schemas (kubernetes-models), unknown fields included', async () => {
    const targets = schemaTargets(k8s).filter((t) => !t.partial);
    const result = await validateAgainstSchemas(targets);
    expect(result.errors).to.deep.equal([]);
    expect(result.checked).to.include.members([
      'apps/v1 Deployment',
      'v1 Service',
      'batch/v1 Job',
      'networking.k8s.io/v1 NetworkPolicy',
      'monitoring.coreos.com/v1 ServiceMonitor',
    ]);
  });

  it('validates the ServiceMonitor against the prometheus-operator CRD schema (@kubernetes-models/prometheus-operator)', async () => {
    const targets = schemaTargets(k8s).filter((t) => !t.partial && t.where.endsWith('servicemonitor.yaml'));
    expect(targets).to.have.lengthOf(1);
    const result = await validateAgainstSchemas(targets);
    expect(result.errors).to.deep.equal([]);
    expect(result.checked).to.deep.equal(['monitoring.coreos.com/v1 ServiceMonitor']);
  });

  it('validates deploy/prometheus/alerts.yaml as a PrometheusRule against the prometheus-operator CRD schema', async () => {
    const result = await validateAgainstSchemas(
      fullTargets(readYamlTree('deploy/prometheus').filter((f) => !isKustomizationFile(f.file))),
    );
    expect(result.errors).to.deep.equal([]);
    expect(result.checked).to.deep.equal(['monitoring.coreos.com/v1 PrometheusRule']);
  });

  it('checks overlay patches for unknown fields only, since they are partial objects', async () => {
    const patches = schemaTargets(k8s).filter((t) => t.partial);
    expect(patches.length).to.be.greaterThanOrEqual(2);
    const result = await validateAgainstSchemas(patches);
    expect(result.errors).to.deep.equal([]);
  });

  it('checks kustomization files for shape only (kustomize publishes no schema): fields, entry types, referenced paths', () => {
    const docs = k8s.filter((f) => isKustomizationFile(f.file)).flatMap((f) => f.documents);
    expect(docs.length).to.be.greaterThanOrEqual(4);
    expect(docs.flatMap((d) => checkKustomizationShape(d, pathKind))).to.deep.equal([]);
  });

  it('checks configMapGenerator entries: name, behavior, KEY=VALUE literals and existing env files', () => {
    const doc = {
      file: 'deploy/k8s/base/kustomization.yaml',
      index: 0,
      count: 1,
      value: {
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        configMapGenerator: [{ name: 'x', behavior: 'upsert', envs: ['missing.env'], literals: ['NO_EQUALS'] }],
      },
    };
    expect(checkKustomizationShape(doc, pathKind)).to.deep.equal([
      'deploy/k8s/base/kustomization.yaml: configMapGenerator[0].behavior must be create, merge or replace',
      'deploy/k8s/base/kustomization.yaml: configMapGenerator[0].envs entry "missing.env" does not exist',
      'deploy/k8s/base/kustomization.yaml: configMapGenerator[0].literals entry "NO_EQUALS" is not KEY=VALUE',
    ]);
  });

  it('validates every rendered kustomization in full', async function () {
    const checked: string[] = [];
    for (const root of kustomizationRoots(k8s)) {
      const rendered = renderKustomization(root);
      expect(rendered.documents.length, root).to.be.greaterThan(0);
      const result = await validateAgainstSchemas(fullTargets([rendered]));
      expect(result.errors, root).to.deep.equal([]);
      checked.push(...result.checked);
    }
    // The generated ConfigMap and every component's objects are validated too.
    expect(checked).to.include.members([
      'v1 ConfigMap',
      'batch/v1 Job',
      'networking.k8s.io/v1 NetworkPolicy',
      'monitoring.coreos.com/v1 ServiceMonitor',
      'monitoring.coreos.com/v1 PrometheusRule',
    ]);
  });

  it('commits no Secret, secret generator or credentials anywhere under deploy/', () => {
    expect(findCommittedSecrets(readYamlTree('deploy'))).to.deep.equal([]);
  });

  describe('the validator rejects broken manifests', () => {
    const invalid = (file: string): SchemaTarget[] => fullTargets(readYamlTree(INVALID).filter((f) => f.file.endsWith(file)));

    it('rejects a Deployment whose replicas is the string "one"', async () => {
      const { errors } = await validateAgainstSchemas(invalid('replicas-string.yaml'));
      expect(errors).to.have.lengthOf(1);
      expect(errors[0]).to.contain(`${INVALID}/replicas-string.yaml`);
      expect(errors[0]).to.contain('Deployment "relay-replicas-string"');
      expect(errors[0]).to.contain('/spec/replicas must be integer');
    });

    it('rejects an unknown field under a container, as strict field validation would', async () => {
      const { errors } = await validateAgainstSchemas(invalid('unknown-container-field.yaml'));
      expect(errors).to.deep.equal([
        `${INVALID}/unknown-container-field.yaml: Deployment "relay-unknown-field": unknown field "spec.template.spec.containers[0].readinesProbe"`,
      ]);
    });

    it('rejects a misspelled ServiceMonitor endpoint field against the CRD schema', async () => {
      const { errors } = await validateAgainstSchemas(invalid('servicemonitor-typo.yaml'));
      expect(errors).to.deep.equal([
        `${INVALID}/servicemonitor-typo.yaml: ServiceMonitor "relay-typo": unknown field "spec.endpoints[0].intervall"`,
      ]);
    });

    it('rejects a kind it has no schema for instead of passing it unchecked', async () => {
      const { errors, checked } = await validateAgainstSchemas(invalid('unknown-kind.yaml'));
      expect(checked).to.deep.equal([]);
      expect(errors).to.have.lengthOf(1);
      expect(errors[0]).to.contain('Widget "relay-widget": no schema is installed for apiVersion "example.com/v1"');
    });

    it('rejects a container without its required name', async () => {
      const deployment = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'relay' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'relay' } },
          template: { metadata: { labels: { app: 'relay' } }, spec: { containers: [{ image: 'relay:1' }] } },
        },
      };
      const { errors } = await validateAgainstSchemas([{ where: 'inline', value: deployment, partial: false }]);
      expect(errors.join('\n')).to.contain('data/spec/template/spec/containers/0 must have required property name');
    });

    it('rejects an unknown field in a patch even though patches skip the required-field check', async () => {
      const patch = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'relay-config' }, date: { RELAY_WATCH: 'x.y' } };
      const { errors } = await validateAgainstSchemas([{ where: 'inline patch', value: patch, partial: true }]);
      expect(errors).to.deep.equal(['inline patch: ConfigMap "relay-config": unknown field "date"']);
    });

    it('rejects a kustomization with a misspelled field and a missing resource', () => {
      const [file] = readYamlTree('test/fixtures/deploy/kustomization-invalid');
      const doc = file?.documents[0];
      if (doc === undefined) throw new Error('fixture missing');
      expect(checkKustomizationShape(doc, pathKind)).to.deep.equal([
        'test/fixtures/deploy/kustomization-invalid/kustomization.yaml: unknown field "namesuffix"',
        'test/fixtures/deploy/kustomization-invalid/kustomization.yaml: resources entry "missing.yaml" does not exist',
      ]);
    });

    it('rejects a committed Secret and a connection string with credentials', () => {
      const files: YamlFile[] = [
        {
          file: 'deploy/k8s/secret.yaml',
          errors: [],
          documents: [
            {
              file: 'deploy/k8s/secret.yaml',
              index: 0,
              count: 1,
              value: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { MONGODB_URI: 'mongodb://u:p@h/' } },
            },
          ],
        },
      ];
      expect(findCommittedSecrets(files)).to.deep.equal([
        'deploy/k8s/secret.yaml: stringData.MONGODB_URI holds a URI with credentials',
        'deploy/k8s/secret.yaml: commits Secret "s"; create it in the cluster instead',
      ]);
    });
  });
});
