/**
 * Checks over the deployment artefacts under deploy/ (Kubernetes manifests, kustomize overlays,
 * compose file, Grafana dashboard, Prometheus alerts).
 *
 * The checks themselves are pure functions over parsed YAML; the few functions that touch the file
 * system or run `kubectl kustomize` are grouped at the end under "I/O".
 *
 * The guard that matters most: the relay is a single reader of a change stream, so every Deployment
 * must run exactly one replica with the Recreate strategy, and nothing may autoscale it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { kustomizeYaml } from './kustomize.js';
import { schemaLeaves } from '../../src/config/load.js';

// ---------------------------------------------------------------------------------------------
// Catalogues (one place; the real metrics module will later live at src/metrics/names.ts)
// ---------------------------------------------------------------------------------------------

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
}

/** Every metric the relay (and its consumer helper) exports. */
export const RELAY_METRICS: readonly MetricSpec[] = [
  { name: 'mongo_kafka_relay_events_total', type: 'counter', labels: ['ns', 'operation_type'] },
  { name: 'mongo_kafka_relay_publish_latency_seconds', type: 'histogram', labels: [] },
  { name: 'mongo_kafka_relay_source_lag_seconds', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_in_flight_events', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_checkpoint_writes_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_checkpoint_write_failures_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_checkpoint_age_seconds', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_dead_letter_total', type: 'counter', labels: ['reason'] },
  { name: 'mongo_kafka_relay_publish_errors_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_stream_restarts_total', type: 'counter', labels: ['reason'] },
  { name: 'mongo_kafka_relay_reader_thread_heap_bytes', type: 'gauge', labels: ['kind'] },
  { name: 'mongo_kafka_relay_filtered_events_total', type: 'counter', labels: ['operation_type'] },
  { name: 'mongo_kafka_relay_build_info', type: 'gauge', labels: ['version', 'checkpoint_id'] },
  { name: 'mongo_kafka_relay_lease_owner', type: 'gauge', labels: ['owner', 'checkpoint_id'] },
  { name: 'mongo_kafka_relay_ready', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_oplog_window_seconds', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_oplog_headroom_seconds', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_oplog_window_known', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_partition_count_changes_total', type: 'counter', labels: ['topic'] },
  { name: 'mongo_kafka_relay_producer_resets_total', type: 'counter', labels: ['error'] },
  { name: 'mongo_kafka_relay_mongodb_transactions_split_total', type: 'counter', labels: ['reason'] },
  { name: 'mongo_kafka_relay_kafka_transaction_records', type: 'histogram', labels: [] },
  { name: 'mongo_kafka_relay_kafka_transaction_commit_seconds', type: 'histogram', labels: [] },
  { name: 'mongo_kafka_relay_sink_stalled_seconds', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_snapshot_documents_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_snapshot_collections', type: 'gauge', labels: ['state'] },
  { name: 'mongo_kafka_relay_snapshot_remaining_documents', type: 'gauge', labels: [] },
  { name: 'mongo_kafka_relay_consumer_handled_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_consumer_duplicates_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_consumer_dead_lettered_total', type: 'counter', labels: [] },
  { name: 'mongo_kafka_relay_consumer_handler_duration_seconds', type: 'histogram', labels: [] },
];

/** Series that Prometheus itself creates for every scrape target (not exported by the relay). */
export const PROMETHEUS_BUILTIN_SERIES: readonly string[] = ['up'];

/** Where alert runbook URLs point by default (the README's runbook section). */
/** The project's address: `repository.url` in package.json, the one place it is written by hand. */
export const REPOSITORY_URL = readRepositoryUrl();
export const RUNBOOK_BASE_URL = `${REPOSITORY_URL}/blob/main/README.md`;

function readRepositoryUrl(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    repository?: { url?: string };
  };
  const url = pkg.repository?.url;
  if (typeof url !== 'string' || !/^https:\/\/\S+[^/]$/.test(url)) {
    throw new Error(
      `package.json repository.url must be an https URL without a trailing slash, got ${String(url)}`,
    );
  }
  return url;
}

/** Runbook anchors (`<a id="runbook-…">`) of a README text. */
export function runbookAnchors(readme: string): string[] {
  return [...readme.matchAll(/<a id="(runbook-[a-z0-9-]+)"><\/a>/g)].map((m) => m[1] ?? '');
}

/** Environment variables the relay reads (the documented deployment surface): the schema's. */
export const RELAY_ENV_VARS: readonly string[] = [...schemaLeaves().values()].flatMap((leaf) =>
  leaf.env ? [leaf.env] : [],
);

/** Variables that hold secrets: only ever from a Secret, never literal in a manifest. */
export const RELAY_SECRET_ENV_VARS: readonly string[] = [
  'MONGODB_URI',
  'RELAY_CHECKPOINT_URI',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
];

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;
export const DEFAULT_METRICS_PORT = 9464;

// ---------------------------------------------------------------------------------------------
// Parsed YAML and small accessors
// ---------------------------------------------------------------------------------------------

export interface YamlDocument {
  /** Path relative to the repository root (or a label such as "kubectl kustomize deploy/k8s/base"). */
  readonly file: string;
  readonly index: number;
  readonly count: number;
  readonly value: unknown;
}

export interface YamlFile {
  readonly file: string;
  readonly documents: readonly YamlDocument[];
  /** Parse errors; a file that does not parse cannot be verified and fails every check. */
  readonly errors: readonly string[];
}

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** value[k1][k2]... or undefined. */
export function dig(value: unknown, ...keys: readonly string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (!isRecord(current)) return undefined;
    current = current[key];
  }
  return current;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function show(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}

/** Splits a multi-document YAML text; empty documents (a trailing `---`) are dropped. */
export function parseYamlFile(file: string, text: string): YamlFile {
  const errors: string[] = [];
  const values: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    for (const error of doc.errors) errors.push(`${file}: not valid YAML: ${error.message}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) values.push(value);
  }
  return {
    file,
    errors,
    documents: values.map((value, index) => ({ file, index, count: values.length, value })),
  };
}

/** "file" or "file (document 3)" for multi-document files. */
export function whereOf(doc: YamlDocument): string {
  return doc.count > 1 ? `${doc.file} (document ${doc.index + 1})` : doc.file;
}

/** The objects of a document: the items of a `kind: *List`, or the document itself. */
export function objectsOf(value: unknown): readonly unknown[] {
  const kind = asString(dig(value, 'kind'));
  const items = dig(value, 'items');
  return kind !== undefined && kind.endsWith('List') && Array.isArray(items) ? items : [value];
}

export function kindOf(value: unknown): string | undefined {
  return asString(dig(value, 'kind'));
}

export function nameOf(value: unknown): string {
  return asString(dig(value, 'metadata', 'name')) ?? '(unnamed)';
}

// ---------------------------------------------------------------------------------------------
// Kustomize references (pure path arithmetic, no rendering)
// ---------------------------------------------------------------------------------------------

const KUSTOMIZATION_FILE_NAMES = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);

export function isKustomizationFile(file: string): boolean {
  return KUSTOMIZATION_FILE_NAMES.has(path.posix.basename(file));
}

export interface PatchReference {
  readonly file: string;
  readonly kustomization: string;
  readonly target: JsonRecord | undefined;
}

export interface InlinePatch {
  readonly where: string;
  readonly text: string;
  readonly target: JsonRecord | undefined;
}

export interface KustomizeIndex {
  /** Files used as patches by some kustomization (they hold partial objects). */
  readonly patchFiles: ReadonlyMap<string, PatchReference>;
  readonly inlinePatches: readonly InlinePatch[];
}

/** Does a string in a patch list hold an inline patch rather than a file path? */
function isInlinePatch(text: string): boolean {
  return text.includes('\n') || /^\s*[[{]/.test(text) || /^\s*[\w$-]+\s*:/.test(text);
}

export function indexKustomizations(files: readonly YamlFile[]): KustomizeIndex {
  const patchFiles = new Map<string, PatchReference>();
  const inlinePatches: InlinePatch[] = [];
  for (const file of files) {
    if (!isKustomizationFile(file.file)) continue;
    const dir = path.posix.dirname(file.file);
    for (const doc of file.documents) {
      const where = whereOf(doc);
      const entries: { path?: unknown; patch?: unknown; target?: unknown }[] = [];
      for (const entry of [
        ...asArray(dig(doc.value, 'patches')),
        ...asArray(dig(doc.value, 'patchesJson6902')),
      ]) {
        if (isRecord(entry)) entries.push(entry);
      }
      for (const entry of asArray(dig(doc.value, 'patchesStrategicMerge'))) {
        if (typeof entry !== 'string') continue;
        entries.push(isInlinePatch(entry) ? { patch: entry } : { path: entry });
      }
      for (const entry of entries) {
        const target = isRecord(entry.target) ? entry.target : undefined;
        if (typeof entry.path === 'string') {
          const resolved = path.posix.normalize(path.posix.join(dir, entry.path));
          patchFiles.set(resolved, { file: resolved, kustomization: where, target });
        }
        if (typeof entry.patch === 'string') inlinePatches.push({ where, text: entry.patch, target });
      }
    }
  }
  return { patchFiles, inlinePatches };
}

// ---------------------------------------------------------------------------------------------
// The single-replica guard
// ---------------------------------------------------------------------------------------------

export interface DeploymentRef {
  readonly name: string;
  readonly where: string;
}

export interface SingleReplicaReport {
  /** Every full Deployment found (patches excluded); lets callers assert the scan was not vacuous. */
  readonly deployments: readonly DeploymentRef[];
  readonly violations: readonly string[];
}

const WHY = 'a change stream must have exactly one reader';

function checkFullDeployment(where: string, deployment: unknown): string[] {
  const name = nameOf(deployment);
  const spec = dig(deployment, 'spec');
  const out: string[] = [];
  if (!isRecord(spec) || !('replicas' in spec)) {
    out.push(
      `${where}: Deployment "${name}" has spec.replicas missing (Kubernetes defaults it to 1, but it must be explicit): set replicas: 1 (${WHY})`,
    );
  } else if (spec.replicas !== 1) {
    out.push(
      `${where}: Deployment "${name}" has spec.replicas ${show(spec.replicas)}; it must be exactly 1 (${WHY})`,
    );
  }
  const strategyType = dig(spec, 'strategy', 'type');
  if (strategyType === undefined) {
    out.push(
      `${where}: Deployment "${name}" has spec.strategy.type missing (Kubernetes defaults to RollingUpdate, which overlaps old and new pods); it must be Recreate`,
    );
  } else if (strategyType !== 'Recreate') {
    out.push(
      `${where}: Deployment "${name}" has spec.strategy.type ${show(strategyType)}; it must be Recreate (no overlap of old and new pods)`,
    );
  }
  return out;
}

function targetsDeployments(target: JsonRecord | undefined): boolean {
  const kind = target?.kind;
  return kind === undefined || kind === 'Deployment';
}

function patchSubject(value: unknown, target: JsonRecord | undefined): string {
  const name = asString(dig(value, 'metadata', 'name')) ?? asString(target?.name);
  return name === undefined ? 'every Deployment matched by the patch target' : `Deployment "${name}"`;
}

/** A strategic-merge (or JSON merge) patch: only what it sets is checked. */
function checkMergePatch(where: string, value: unknown, target: JsonRecord | undefined): string[] {
  const kind = kindOf(value) ?? asString(target?.kind);
  if (kind !== 'Deployment') return [];
  const subject = patchSubject(value, target);
  const spec = dig(value, 'spec');
  const out: string[] = [];
  if (spec === null)
    out.push(`${where}: patch of ${subject} deletes spec (and with it replicas and strategy)`);
  if (!isRecord(spec)) return out;
  if ('replicas' in spec && spec.replicas !== 1) {
    out.push(
      `${where}: patch of ${subject} sets spec.replicas to ${show(spec.replicas)}; it must stay 1 (${WHY})`,
    );
  }
  if ('strategy' in spec) {
    const strategyType = dig(spec.strategy, 'type');
    if (strategyType !== 'Recreate') {
      out.push(
        `${where}: patch of ${subject} sets spec.strategy to ${show(spec.strategy)}; spec.strategy.type must stay Recreate`,
      );
    }
  }
  return out;
}

/** A JSON 6902 patch (a list of operations). */
function checkJsonPatch(where: string, ops: readonly unknown[], target: JsonRecord | undefined): string[] {
  if (!targetsDeployments(target)) return [];
  const subject = patchSubject(undefined, target);
  const out: string[] = [];
  for (const op of ops) {
    const verb = asString(dig(op, 'op'));
    const opPath = asString(dig(op, 'path'));
    const value = dig(op, 'value');
    if (verb === undefined || opPath === undefined || verb === 'test') continue;
    const sets = verb === 'add' || verb === 'replace';
    const describe = `${verb} ${opPath}${sets ? ` ${show(value)}` : ''}`;
    if (opPath === '/spec') {
      if (!sets)
        out.push(`${where}: JSON patch of ${subject} applies ${describe}; replicas and strategy must stay`);
      else out.push(...checkMergePatch(where, { kind: 'Deployment', spec: value }, target));
    } else if (opPath === '/spec/replicas') {
      if (!sets || value !== 1) {
        out.push(
          `${where}: JSON patch of ${subject} applies ${describe}; spec.replicas must stay 1 (${WHY})`,
        );
      }
    } else if (opPath === '/spec/strategy') {
      if (!sets || dig(value, 'type') !== 'Recreate') {
        out.push(
          `${where}: JSON patch of ${subject} applies ${describe}; spec.strategy.type must stay Recreate`,
        );
      }
    } else if (opPath === '/spec/strategy/type') {
      if (!sets || value !== 'Recreate') {
        out.push(
          `${where}: JSON patch of ${subject} applies ${describe}; spec.strategy.type must stay Recreate`,
        );
      }
    } else if (opPath.startsWith('/spec/strategy/')) {
      out.push(
        `${where}: JSON patch of ${subject} applies ${describe}; only the Recreate strategy (no settings) is allowed`,
      );
    }
  }
  return out;
}

function checkPatchValue(where: string, value: unknown, target: JsonRecord | undefined): string[] {
  return Array.isArray(value) ? checkJsonPatch(where, value, target) : checkMergePatch(where, value, target);
}

const SCALER_KINDS = new Set(['HorizontalPodAutoscaler', 'ScaledObject']);

/**
 * Every Deployment must have `replicas: 1` (explicitly) and `strategy.type: Recreate`; no
 * HorizontalPodAutoscaler (any apiVersion) or KEDA ScaledObject may target one; kustomize
 * `replicas:` entries and patches (files or inline, strategic-merge or JSON 6902) may not change
 * replicas or strategy. Works on raw trees (with overlays) and on rendered output alike.
 */
export function checkSingleReplica(files: readonly YamlFile[]): SingleReplicaReport {
  const violations: string[] = files.flatMap((f) => f.errors);
  const index = indexKustomizations(files);
  const deployments: DeploymentRef[] = [];
  const scalers: { where: string; value: unknown }[] = [];

  for (const file of files) {
    const patchRef = index.patchFiles.get(file.file);
    for (const doc of file.documents) {
      const where = whereOf(doc);
      if (isKustomizationFile(file.file)) {
        for (const entry of asArray(dig(doc.value, 'replicas'))) {
          const count = dig(entry, 'count');
          if (count !== 1) {
            const name = asString(dig(entry, 'name')) ?? '(unnamed)';
            violations.push(
              `${where}: kustomize replicas sets "${name}" to count ${show(count)}; it must stay 1 (${WHY})`,
            );
          }
        }
      } else if (patchRef !== undefined) {
        violations.push(...checkPatchValue(where, doc.value, patchRef.target));
      } else {
        for (const object of objectsOf(doc.value)) {
          const kind = kindOf(object);
          if (kind === 'Deployment') {
            deployments.push({ name: nameOf(object), where });
            violations.push(...checkFullDeployment(where, object));
          } else if (kind !== undefined && SCALER_KINDS.has(kind)) {
            scalers.push({ where, value: object });
          }
        }
      }
    }
  }

  for (const inline of index.inlinePatches) {
    for (const doc of parseAllDocuments(inline.text)) {
      if (doc.errors.length > 0) {
        violations.push(`${inline.where}: inline patch is not valid YAML: ${doc.errors[0]?.message ?? ''}`);
        continue;
      }
      violations.push(...checkPatchValue(`${inline.where} (inline patch)`, doc.toJS(), inline.target));
    }
  }

  const names = new Set(deployments.map((d) => d.name));
  for (const scaler of scalers) {
    const ref = dig(scaler.value, 'spec', 'scaleTargetRef');
    const targetName = asString(dig(ref, 'name'));
    const targetKind = asString(dig(ref, 'kind')) ?? 'Deployment';
    if (targetKind === 'Deployment' && targetName !== undefined && names.has(targetName)) {
      const kind = kindOf(scaler.value) ?? 'autoscaler';
      const max = dig(scaler.value, 'spec', kind === 'ScaledObject' ? 'maxReplicaCount' : 'maxReplicas');
      violations.push(
        `${scaler.where}: ${kind} "${nameOf(scaler.value)}" scales Deployment "${targetName}" (scaleTargetRef, max replicas ${show(max)}); the relay must stay at exactly 1 replica (${WHY})`,
      );
    }
  }
  return { deployments, violations };
}

// ---------------------------------------------------------------------------------------------
// Rendered overlays: relays must not share a checkpoint, a watched collection or pods
// ---------------------------------------------------------------------------------------------

interface WatchTarget {
  readonly db: string;
  readonly coll: string;
}

function parseWatchTarget(text: string): WatchTarget {
  const trimmed = text.trim();
  if (trimmed === '*') return { db: '*', coll: '*' };
  const dot = trimmed.indexOf('.');
  return dot < 0 ? { db: trimmed, coll: '*' } : { db: trimmed.slice(0, dot), coll: trimmed.slice(dot + 1) };
}

/** Do two RELAY_WATCH entries (db.coll, db.* or *) cover a common collection? */
export function watchTargetsOverlap(a: string, b: string): boolean {
  const x = parseWatchTarget(a);
  const y = parseWatchTarget(b);
  if (x.db === '*' || y.db === '*') return true;
  if (x.db !== y.db) return false;
  return x.coll === '*' || y.coll === '*' || x.coll === y.coll;
}

export function splitWatch(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function relayContainer(deployment: unknown): unknown {
  const containers = asArray(dig(deployment, 'spec', 'template', 'spec', 'containers'));
  return containers.find((c) => dig(c, 'name') === 'relay') ?? containers[0];
}

export type EnvSource =
  | { readonly from: 'value'; readonly value: string }
  | { readonly from: 'configMap'; readonly name: string; readonly value: string | undefined }
  | { readonly from: 'secret'; readonly name: string; readonly key: string }
  | { readonly from: 'other' };

/** Where a container's environment variable comes from (env first, then envFrom ConfigMaps). */
export function envSource(
  objects: readonly unknown[],
  container: unknown,
  variable: string,
): EnvSource | undefined {
  for (const entry of asArray(dig(container, 'env'))) {
    if (dig(entry, 'name') !== variable) continue;
    const value = dig(entry, 'value');
    if (typeof value === 'string') return { from: 'value', value };
    const secretName = asString(dig(entry, 'valueFrom', 'secretKeyRef', 'name'));
    const secretKey = asString(dig(entry, 'valueFrom', 'secretKeyRef', 'key'));
    if (secretName !== undefined && secretKey !== undefined)
      return { from: 'secret', name: secretName, key: secretKey };
    return { from: 'other' };
  }
  for (const entry of asArray(dig(container, 'envFrom'))) {
    const name = asString(dig(entry, 'configMapRef', 'name'));
    if (name === undefined) continue;
    const prefix = asString(dig(entry, 'prefix')) ?? '';
    if (!variable.startsWith(prefix)) continue;
    const configMap = objects.find((o) => kindOf(o) === 'ConfigMap' && nameOf(o) === name);
    const value = dig(configMap, 'data', variable.slice(prefix.length));
    if (typeof value === 'string') return { from: 'configMap', name, value };
  }
  return undefined;
}

function envValue(objects: readonly unknown[], container: unknown, variable: string): string | undefined {
  const source = envSource(objects, container, variable);
  return source?.from === 'value' || source?.from === 'configMap' ? source.value : undefined;
}

function labelsMatch(selector: unknown, labels: unknown): boolean {
  if (!isRecord(selector) || !isRecord(labels) || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * For a rendered set of objects (one `kubectl kustomize` output): several relay Deployments must
 * use distinct RELAY_CHECKPOINT_IDs, disjoint RELAY_WATCH sets and selectors that do not pick up
 * each other's pods.
 */
export function checkRelayIsolation(label: string, objects: readonly unknown[]): string[] {
  const relays = objects
    .filter((o) => kindOf(o) === 'Deployment')
    .map((d) => {
      const container = relayContainer(d);
      return {
        name: nameOf(d),
        deployment: d,
        checkpointId: envValue(objects, container, 'RELAY_CHECKPOINT_ID'),
        watch: envValue(objects, container, 'RELAY_WATCH'),
      };
    });
  const out: string[] = [];
  for (const relay of relays) {
    if (relay.watch === undefined || splitWatch(relay.watch).length === 0) {
      out.push(`${label}: Deployment "${relay.name}" has no RELAY_WATCH`);
    }
    if (relays.length > 1 && relay.checkpointId === undefined) {
      out.push(
        `${label}: Deployment "${relay.name}" has no RELAY_CHECKPOINT_ID, so several relays would share the default`,
      );
    }
  }
  for (let i = 0; i < relays.length; i++) {
    for (let j = i + 1; j < relays.length; j++) {
      const a = relays[i];
      const b = relays[j];
      if (a === undefined || b === undefined) continue;
      if (a.checkpointId !== undefined && a.checkpointId === b.checkpointId) {
        out.push(
          `${label}: Deployments "${a.name}" and "${b.name}" share RELAY_CHECKPOINT_ID ${show(a.checkpointId)}; they would race on one checkpoint`,
        );
      }
      for (const x of splitWatch(a.watch ?? '')) {
        for (const y of splitWatch(b.watch ?? '')) {
          if (watchTargetsOverlap(x, y)) {
            out.push(
              `${label}: Deployments "${a.name}" (RELAY_WATCH ${x}) and "${b.name}" (RELAY_WATCH ${y}) overlap; those changes would be published twice`,
            );
          }
        }
      }
      for (const [p, q] of [
        [a, b],
        [b, a],
      ] as const) {
        const selector = dig(p.deployment, 'spec', 'selector', 'matchLabels');
        if (labelsMatch(selector, dig(q.deployment, 'spec', 'template', 'metadata', 'labels'))) {
          out.push(`${label}: the selector of Deployment "${p.name}" also matches the pods of "${q.name}"`);
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Relay pod wiring (grace period, probes, port, secrets, security context, resources)
// ---------------------------------------------------------------------------------------------

/** Checks every Deployment in a set of objects (raw base files or a rendered overlay). */
export function checkRelayPodWiring(label: string, objects: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const deployment of objects.filter((o) => kindOf(o) === 'Deployment')) {
    const name = nameOf(deployment);
    const at = `${label}: Deployment "${name}"`;
    const pod = dig(deployment, 'spec', 'template', 'spec');
    const container = relayContainer(deployment);
    if (container === undefined) {
      out.push(`${at} has no container`);
      continue;
    }

    const shutdownMs = Number(
      envValue(objects, container, 'RELAY_SHUTDOWN_TIMEOUT_MS') ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    );
    const grace = dig(pod, 'terminationGracePeriodSeconds') ?? 30;
    if (typeof grace !== 'number' || !(grace * 1000 > shutdownMs)) {
      out.push(
        `${at} has terminationGracePeriodSeconds ${show(grace)}, not above the relay's shutdown timeout of ${shutdownMs} ms`,
      );
    }

    const host = envValue(objects, container, 'METRICS_HOST');
    if (host !== '0.0.0.0' && host !== '::') {
      out.push(`${at} sets METRICS_HOST ${show(host)}; probes and Prometheus need 0.0.0.0`);
    }
    const port = Number(envValue(objects, container, 'METRICS_PORT') ?? DEFAULT_METRICS_PORT);
    const containerPort = asArray(dig(container, 'ports')).find((p) => dig(p, 'containerPort') === port);
    if (containerPort === undefined) out.push(`${at} declares no containerPort ${port} (METRICS_PORT)`);
    for (const [probe, expected] of [
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const) {
      const probePath = dig(container, probe, 'httpGet', 'path');
      const probePort = dig(container, probe, 'httpGet', 'port');
      const portOk =
        probePort === port || (probePort !== undefined && probePort === dig(containerPort, 'name'));
      if (probePath !== expected || !portOk) {
        out.push(
          `${at} has ${probe} ${show(dig(container, probe, 'httpGet'))}; expected httpGet ${expected} on the metrics port ${port}`,
        );
      }
    }

    for (const variable of RELAY_SECRET_ENV_VARS) {
      const source = envSource(objects, container, variable);
      if (source === undefined) {
        if (variable === 'MONGODB_URI') out.push(`${at} does not set MONGODB_URI (from a Secret)`);
      } else if (source.from !== 'secret') {
        out.push(
          `${at} takes the secret ${variable} from ${source.from === 'configMap' ? `ConfigMap "${source.name}"` : 'a literal'}; use a secretKeyRef`,
        );
      }
    }

    const sc = (key: string): unknown =>
      dig(container, 'securityContext', key) ?? dig(pod, 'securityContext', key);
    const expectations: [string, unknown, unknown][] = [
      ['runAsNonRoot', sc('runAsNonRoot'), true],
      ['runAsUser', sc('runAsUser'), 10001],
      ['readOnlyRootFilesystem', dig(container, 'securityContext', 'readOnlyRootFilesystem'), true],
      ['allowPrivilegeEscalation', dig(container, 'securityContext', 'allowPrivilegeEscalation'), false],
      ['seccompProfile.type', dig(sc('seccompProfile'), 'type'), 'RuntimeDefault'],
    ];
    for (const [field, actual, expected] of expectations) {
      if (actual !== expected)
        out.push(`${at} has securityContext.${field} ${show(actual)}; expected ${show(expected)}`);
    }
    if (!asArray(dig(container, 'securityContext', 'capabilities', 'drop')).includes('ALL')) {
      out.push(`${at} does not drop ALL capabilities`);
    }
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory'] as const) {
        if (dig(container, 'resources', kind, resource) === undefined)
          out.push(`${at} has no resources.${kind}.${resource}`);
      }
    }
  }
  return out;
}

/** No Secret objects, secret generators or credentials in URIs may be committed. */
export function findCommittedSecrets(files: readonly YamlFile[]): string[] {
  const out: string[] = [];
  const credentials = /\b(mongodb(?:\+srv)?|kafka|https?):\/\/[^\s/@:]+:[^\s/@]+@/i;
  const walk = (where: string, value: unknown, at: string): void => {
    if (typeof value === 'string' && credentials.test(value))
      out.push(`${where}: ${at} holds a URI with credentials`);
    if (Array.isArray(value)) value.forEach((v, i) => walk(where, v, `${at}[${i}]`));
    else if (isRecord(value))
      for (const [k, v] of Object.entries(value)) walk(where, v, at === '' ? k : `${at}.${k}`);
  };
  for (const file of files) {
    for (const doc of file.documents) {
      const where = whereOf(doc);
      walk(where, doc.value, '');
      for (const object of objectsOf(doc.value)) {
        if (kindOf(object) === 'Secret')
          out.push(`${where}: commits Secret "${nameOf(object)}"; create it in the cluster instead`);
        if (kindOf(object) === 'ConfigMap') {
          for (const variable of RELAY_SECRET_ENV_VARS) {
            if (dig(object, 'data', variable) !== undefined) {
              out.push(`${where}: ConfigMap "${nameOf(object)}" holds the secret ${variable}`);
            }
          }
        }
      }
      if (isKustomizationFile(file.file) && asArray(dig(doc.value, 'secretGenerator')).length > 0) {
        out.push(
          `${where}: uses secretGenerator; secrets are created in the cluster, not generated from the repository`,
        );
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema validation
// ---------------------------------------------------------------------------------------------

/** Packages that ship validators and types for CRDs, by API group. */
const CRD_MODEL_PACKAGES: Readonly<Record<string, string>> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/**
 * The kubernetes-models module holding a kind, e.g. "kubernetes-models/apps/v1/Deployment", or
 * undefined when no installed package ships a schema for it.
 */
export function schemaModuleFor(apiVersion: string, kind: string): string | undefined {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  const parts = apiVersion.split('/');
  const [group, version] = parts;
  if (parts.length === 1 && group !== undefined && /^v\d+\w*$/.test(group))
    return `kubernetes-models/${group}/${kind}`;
  if (parts.length !== 2 || group === undefined || version === undefined || !/^v\d+\w*$/.test(version))
    return undefined;
  if (!group.includes('.') || group.endsWith('.k8s.io'))
    return `kubernetes-models/${group}/${version}/${kind}`;
  const pkg = CRD_MODEL_PACKAGES[group];
  return pkg === undefined ? undefined : `${pkg}/${group}/${version}/${kind}`;
}

type ModelConstructor = new (data: unknown) => { validate(): void };

function isModelConstructor(value: unknown): value is ModelConstructor {
  if (typeof value !== 'function') return false;
  const prototype: unknown = (value as { prototype?: unknown }).prototype;
  return isRecord(prototype) && typeof prototype.validate === 'function';
}

async function loadModel(module: string, kind: string): Promise<ModelConstructor | undefined> {
  try {
    const loaded: unknown = await import(module);
    const model = dig(loaded, kind);
    return isModelConstructor(model) ? model : undefined;
  } catch {
    return undefined;
  }
}

interface TypeIndex {
  readonly checker: ts.TypeChecker;
  readonly types: ReadonlyMap<string, ts.Type>;
}

const typeIndexCache = new Map<string, TypeIndex>();

/**
 * Loads the TypeScript interfaces (generated from the same OpenAPI schemas) for some modules, to
 * find fields the schemas do not know: the Kubernetes OpenAPI schemas do not forbid additional
 * properties, but the API server's strict field validation (kubectl's default) rejects them.
 */
function loadTypes(modules: readonly { module: string; kind: string }[]): TypeIndex {
  const unique = [...new Map(modules.map((m) => [m.module, m])).values()].sort((a, b) =>
    a.module.localeCompare(b.module),
  );
  const key = unique.map((m) => m.module).join('|');
  const cached = typeIndexCache.get(key);
  if (cached !== undefined) return cached;

  const fileName = path.join(REPO_ROOT, '__deploy_schema_types__.ts');
  const source = unique.map((m, i) => `export type T${i} = import('${m.module}').I${m.kind};`).join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName
      ? ts.createSourceFile(name, source, languageVersion)
      : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName);
  const diagnostics = sourceFile === undefined ? [] : program.getSemanticDiagnostics(sourceFile);
  if (sourceFile === undefined || diagnostics.length > 0) {
    const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')).join('; ');
    throw new Error(`cannot load the model types (${text})`);
  }
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(sourceFile);
  const exports = moduleSymbol === undefined ? [] : checker.getExportsOfModule(moduleSymbol);
  const types = new Map<string, ts.Type>();
  unique.forEach((m, i) => {
    const symbol = exports.find((s) => s.name === `T${i}`);
    if (symbol !== undefined) types.set(m.module, checker.getDeclaredTypeOfSymbol(symbol));
  });
  const index = { checker, types };
  typeIndexCache.set(key, index);
  return index;
}

/** Fields of `value` that the type does not declare, as paths like spec.template.spec.containers[0].bogus. */
function unknownFields(
  checker: ts.TypeChecker,
  value: unknown,
  type: ts.Type,
  at: string,
  partial: boolean,
  out: string[],
): void {
  if (value === null || typeof value !== 'object') return;
  const nonNull = checker.getNonNullableType(type);
  if ((nonNull.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) !== 0) return;
  const members = nonNull.isUnion() ? nonNull.types : [nonNull];
  if (Array.isArray(value)) {
    const arrayType = members.find((m) => checker.isArrayType(m));
    const element =
      arrayType === undefined ? undefined : checker.getTypeArguments(arrayType as ts.TypeReference)[0];
    if (element === undefined) return; // not an array in the schema: the JSON schema check reports it
    value.forEach((item, i) => unknownFields(checker, item, element, `${at}[${i}]`, partial, out));
    return;
  }
  const objectTypes = members.filter((m) => (m.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(m));
  if (objectTypes.length === 0) return;
  for (const [key, child] of Object.entries(value)) {
    // Strategic-merge-patch directives ($patch, $retainKeys, $setElementOrder/...) in patches.
    if (partial && key.startsWith('$')) continue;
    let childType: ts.Type | undefined;
    for (const objectType of objectTypes) {
      const property = checker.getPropertyOfType(objectType, key);
      childType =
        property !== undefined
          ? checker.getTypeOfSymbol(property)
          : checker.getIndexInfoOfType(objectType, ts.IndexKind.String)?.type;
      if (childType !== undefined) break;
    }
    const childPath = at === '' ? key : `${at}.${key}`;
    if (childType === undefined) out.push(childPath);
    else unknownFields(checker, child, childType, childPath, partial, out);
  }
}

export interface SchemaTarget {
  /** Where the object is, for messages. */
  readonly where: string;
  readonly value: unknown;
  /** A patch: only checked for unknown fields (required fields are in the base). */
  readonly partial: boolean;
}

export interface SchemaResult {
  readonly errors: readonly string[];
  /** "apiVersion kind" of every object checked, for coverage assertions. */
  readonly checked: readonly string[];
}

/**
 * Validates objects against the Kubernetes OpenAPI schemas shipped by kubernetes-models (and the
 * prometheus-operator CRD schemas from @kubernetes-models/prometheus-operator): types, enums,
 * required fields and formats through the packages' compiled JSON-schema validators, plus unknown
 * fields through the TypeScript interfaces generated from the same schemas. An object whose kind
 * has no installed schema is an error, never a silent pass.
 */
export async function validateAgainstSchemas(targets: readonly SchemaTarget[]): Promise<SchemaResult> {
  const errors: string[] = [];
  const checked: string[] = [];
  const resolved: { target: SchemaTarget; module: string; kind: string; subject: string }[] = [];
  for (const target of targets) {
    const apiVersion = asString(dig(target.value, 'apiVersion'));
    const kind = kindOf(target.value);
    const module =
      apiVersion === undefined || kind === undefined ? undefined : schemaModuleFor(apiVersion, kind);
    const subject = `${kind ?? '(no kind)'} "${nameOf(target.value)}"`;
    if (apiVersion === undefined || kind === undefined || module === undefined) {
      errors.push(
        `${target.where}: ${subject}: no schema is installed for apiVersion ${show(apiVersion)} kind ${show(kind)}`,
      );
      continue;
    }
    const model = await loadModel(module, kind);
    if (model === undefined) {
      errors.push(
        `${target.where}: ${subject}: no schema is installed for apiVersion ${show(apiVersion)} kind ${show(kind)}`,
      );
      continue;
    }
    checked.push(`${apiVersion} ${kind}`);
    resolved.push({ target, module, kind, subject });
    if (!target.partial) {
      try {
        new model(target.value).validate();
      } catch (error) {
        errors.push(`${target.where}: ${subject}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  if (resolved.length > 0) {
    const { checker, types } = loadTypes(resolved.map((r) => ({ module: r.module, kind: r.kind })));
    for (const r of resolved) {
      const type = types.get(r.module);
      if (type === undefined) {
        errors.push(`${r.target.where}: ${r.subject}: no TypeScript type found in ${r.module}`);
        continue;
      }
      const unknown: string[] = [];
      unknownFields(checker, r.target.value, type, '', r.target.partial, unknown);
      for (const field of unknown) errors.push(`${r.target.where}: ${r.subject}: unknown field "${field}"`);
    }
  }
  return { errors, checked };
}

export type FileRole = 'kustomization' | 'patch' | 'resource';

export function roleOf(file: string, index: KustomizeIndex): FileRole {
  if (isKustomizationFile(file)) return 'kustomization';
  return index.patchFiles.has(file) ? 'patch' : 'resource';
}

/** Schema targets for a raw tree: resources in full, patch files for unknown fields only. */
export function schemaTargets(files: readonly YamlFile[]): SchemaTarget[] {
  const index = indexKustomizations(files);
  const targets: SchemaTarget[] = [];
  for (const file of files) {
    const role = roleOf(file.file, index);
    if (role === 'kustomization') continue;
    for (const doc of file.documents) {
      if (role === 'patch' && Array.isArray(doc.value)) continue; // JSON 6902 operations
      for (const object of objectsOf(doc.value))
        targets.push({ where: whereOf(doc), value: object, partial: role === 'patch' });
    }
  }
  return targets;
}

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'metadata',
  'resources',
  'components',
  'crds',
  'namespace',
  'namePrefix',
  'nameSuffix',
  'labels',
  'commonLabels',
  'commonAnnotations',
  'patches',
  'patchesStrategicMerge',
  'patchesJson6902',
  'images',
  'replicas',
  'configMapGenerator',
  'secretGenerator',
  'generatorOptions',
  'generators',
  'transformers',
  'validators',
  'replacements',
  'vars',
  'configurations',
  'openapi',
  'helmCharts',
  'helmGlobals',
  'buildMetadata',
  'sortOptions',
]);

const PATCH_FIELDS = new Set(['path', 'patch', 'target', 'options']);
const TARGET_FIELDS = new Set([
  'group',
  'version',
  'kind',
  'name',
  'namespace',
  'labelSelector',
  'annotationSelector',
]);
const LABEL_FIELDS = new Set(['pairs', 'includeSelectors', 'includeTemplates', 'fields']);
const IMAGE_FIELDS = new Set(['name', 'newName', 'newTag', 'digest', 'tagSuffix']);
const GENERATOR_FIELDS = new Set(['name', 'namespace', 'behavior', 'envs', 'files', 'literals', 'options']);

export type PathKind = 'file' | 'dir' | undefined;

/**
 * Shape of a kustomization file only (kustomize publishes no schema): known top-level fields,
 * list/field types of the entries used here, and that referenced files and directories exist.
 * `exists` answers for repository-relative paths, so the function stays pure.
 */
export function checkKustomizationShape(doc: YamlDocument, exists: (relPath: string) => PathKind): string[] {
  const where = whereOf(doc);
  const value = doc.value;
  const out: string[] = [];
  if (!isRecord(value)) return [`${where}: a kustomization must be a mapping`];
  const apiVersion = value.apiVersion;
  const kind = value.kind;
  const shapeOk =
    (apiVersion === 'kustomize.config.k8s.io/v1beta1' && kind === 'Kustomization') ||
    (apiVersion === 'kustomize.config.k8s.io/v1alpha1' && kind === 'Component');
  if (!shapeOk)
    out.push(
      `${where}: apiVersion/kind ${show(apiVersion)}/${show(kind)} is not a Kustomization or Component`,
    );
  for (const key of Object.keys(value)) {
    if (!KUSTOMIZATION_FIELDS.has(key)) out.push(`${where}: unknown field "${key}"`);
  }
  const dir = path.posix.dirname(doc.file);
  const resolve = (p: string): string => path.posix.normalize(path.posix.join(dir, p));
  const strings = (field: string): string[] => {
    const list = value[field];
    if (list === undefined) return [];
    if (!Array.isArray(list) || !list.every((s): s is string => typeof s === 'string')) {
      out.push(`${where}: ${field} must be a list of strings`);
      return [];
    }
    return list;
  };
  for (const field of ['resources', 'components'] as const) {
    for (const entry of strings(field)) {
      if (/^[a-z]+:\/\//.test(entry) || entry.includes('?ref=')) continue; // remote: not resolved offline
      const kindOfPath = exists(resolve(entry));
      if (kindOfPath === undefined) out.push(`${where}: ${field} entry "${entry}" does not exist`);
      if (
        kindOfPath === 'dir' &&
        ![...KUSTOMIZATION_FILE_NAMES].some((n) => exists(resolve(`${entry}/${n}`)) === 'file')
      ) {
        out.push(`${where}: ${field} entry "${entry}" is a directory without a kustomization`);
      }
    }
  }
  for (const field of ['namePrefix', 'nameSuffix', 'namespace'] as const) {
    if (value[field] !== undefined && typeof value[field] !== 'string')
      out.push(`${where}: ${field} must be a string`);
  }
  const listOf = (
    field: string,
    allowed: ReadonlySet<string>,
    check: (entry: JsonRecord, at: string) => void,
  ): void => {
    const list = value[field];
    if (list === undefined) return;
    if (!Array.isArray(list)) {
      out.push(`${where}: ${field} must be a list`);
      return;
    }
    list.forEach((entry, i) => {
      const at = `${field}[${i}]`;
      if (!isRecord(entry)) {
        out.push(`${where}: ${at} must be a mapping`);
        return;
      }
      for (const key of Object.keys(entry))
        if (!allowed.has(key)) out.push(`${where}: ${at} has unknown field "${key}"`);
      check(entry, at);
    });
  };
  const checkPatch = (entry: JsonRecord, at: string): void => {
    const hasPath = typeof entry.path === 'string';
    const hasPatch = typeof entry.patch === 'string';
    if (hasPath === hasPatch) out.push(`${where}: ${at} needs exactly one of path or patch`);
    if (hasPath && typeof entry.path === 'string' && exists(resolve(entry.path)) !== 'file') {
      out.push(`${where}: ${at} path "${entry.path}" does not exist`);
    }
    if (entry.target !== undefined) {
      if (!isRecord(entry.target)) out.push(`${where}: ${at}.target must be a mapping`);
      else
        for (const key of Object.keys(entry.target))
          if (!TARGET_FIELDS.has(key)) out.push(`${where}: ${at}.target has unknown field "${key}"`);
    }
  };
  listOf('patches', PATCH_FIELDS, checkPatch);
  listOf('patchesJson6902', PATCH_FIELDS, checkPatch);
  listOf('labels', LABEL_FIELDS, (entry, at) => {
    if (!isRecord(entry.pairs) || !Object.values(entry.pairs).every((v) => typeof v === 'string')) {
      out.push(`${where}: ${at}.pairs must map label names to strings`);
    }
    for (const flag of ['includeSelectors', 'includeTemplates'] as const) {
      if (entry[flag] !== undefined && typeof entry[flag] !== 'boolean')
        out.push(`${where}: ${at}.${flag} must be a boolean`);
    }
  });
  listOf('images', IMAGE_FIELDS, (entry, at) => {
    if (typeof entry.name !== 'string') out.push(`${where}: ${at}.name must be a string`);
  });
  listOf('configMapGenerator', GENERATOR_FIELDS, (entry, at) => {
    if (typeof entry.name !== 'string') out.push(`${where}: ${at}.name must be a string`);
    if (entry.behavior !== undefined && !['create', 'merge', 'replace'].includes(String(entry.behavior)))
      out.push(`${where}: ${at}.behavior must be create, merge or replace`);
    for (const field of ['envs', 'files'] as const) {
      for (const file of asArray(entry[field])) {
        const rel = String(file).includes('=')
          ? String(file).slice(String(file).indexOf('=') + 1)
          : String(file);
        if (exists(resolve(rel)) !== 'file')
          out.push(`${where}: ${at}.${field} entry "${String(file)}" does not exist`);
      }
    }
    for (const literal of asArray(entry.literals)) {
      if (typeof literal !== 'string' || !/^[^=]+=/.test(literal))
        out.push(`${where}: ${at}.literals entry ${show(literal)} is not KEY=VALUE`);
    }
  });
  listOf('replicas', new Set(['name', 'count']), (entry, at) => {
    if (typeof entry.name !== 'string' || !Number.isInteger(entry.count))
      out.push(`${where}: ${at} needs a name and an integer count`);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// PromQL: which series an expression reads (enough for the dashboard and alert rules)
// ---------------------------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

/**
 * Metric (series) names an expression selects. Also accepts Grafana's label_values(metric, label).
 * Strings, label matchers, ranges, grouping clauses, function names, keywords, numbers and
 * Grafana variables are ignored.
 */
export function seriesInPromQL(expression: string): string[] {
  const labelValues = /^\s*label_values\(\s*([^,)]+)/.exec(expression);
  let text = labelValues?.[1] ?? expression;
  text = text
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/(?<![A-Za-z0-9_:])\d[\w.]*/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const token = match[0];
    const end = (match.index ?? 0) + token.length;
    if (/^\s*\(/.test(text.slice(end))) continue; // a function or aggregation call
    if (!PROMQL_KEYWORDS.has(token.toLowerCase())) names.add(token);
  }
  return [...names];
}

/** The catalogued metric a series belongs to (histograms expose _bucket, _sum and _count). */
export function catalogMetricFor(series: string): MetricSpec | undefined {
  const exact = RELAY_METRICS.find((m) => m.name === series);
  if (exact !== undefined) return exact;
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return RELAY_METRICS.find((m) => m.name === base && m.type === 'histogram' && base !== series);
}

export function isKnownSeries(series: string): boolean {
  return PROMETHEUS_BUILTIN_SERIES.includes(series) || catalogMetricFor(series) !== undefined;
}

/** Every PromQL expression of a Grafana dashboard (panel targets, rows' panels, query variables). */
export function dashboardExpressions(dashboard: unknown): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const visitPanels = (panels: readonly unknown[]): void => {
    for (const panel of panels) {
      const title = asString(dig(panel, 'title')) ?? '(untitled)';
      for (const target of asArray(dig(panel, 'targets'))) {
        const expr = asString(dig(target, 'expr'));
        if (expr !== undefined) out.push({ where: `panel "${title}"`, expr });
      }
      visitPanels(asArray(dig(panel, 'panels')));
    }
  };
  visitPanels(asArray(dig(dashboard, 'panels')));
  for (const variable of asArray(dig(dashboard, 'templating', 'list'))) {
    if (dig(variable, 'type') !== 'query') continue;
    const query = dig(variable, 'query');
    const expr = typeof query === 'string' ? query : asString(dig(query, 'query'));
    if (expr !== undefined) out.push({ where: `variable "${asString(dig(variable, 'name')) ?? ''}"`, expr });
  }
  return out;
}

export interface AlertRule {
  readonly group: string;
  readonly alert: string;
  readonly expr: string;
  readonly for: string | undefined;
  readonly labels: JsonRecord;
  readonly annotations: JsonRecord;
}

/** Alerting rules of a PrometheusRule (spec.groups) or a plain Prometheus rule file (groups). */
export function alertRules(document: unknown): AlertRule[] {
  const groups = asArray(dig(document, 'spec', 'groups') ?? dig(document, 'groups'));
  return groups.flatMap((group) =>
    asArray(dig(group, 'rules')).flatMap((rule): AlertRule[] => {
      const alert = asString(dig(rule, 'alert'));
      const expr = dig(rule, 'expr');
      if (alert === undefined) return [];
      return [
        {
          group: asString(dig(group, 'name')) ?? '',
          alert,
          expr: typeof expr === 'string' ? expr : String(expr),
          for: asString(dig(rule, 'for')),
          labels: isRecord(dig(rule, 'labels')) ? (dig(rule, 'labels') as JsonRecord) : {},
          annotations: isRecord(dig(rule, 'annotations')) ? (dig(rule, 'annotations') as JsonRecord) : {},
        },
      ];
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// I/O (file system, kubectl)
// ---------------------------------------------------------------------------------------------

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function repoPath(relPath: string): string {
  return path.join(REPO_ROOT, relPath);
}

export function pathKind(relPath: string): PathKind {
  try {
    const stats = statSync(repoPath(relPath));
    return stats.isDirectory() ? 'dir' : stats.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

/** Every .yaml/.yml file under a repository-relative directory, parsed, in a stable order. */
export function readYamlTree(relDir: string): YamlFile[] {
  const files: YamlFile[] = [];
  const visit = (rel: string): void => {
    for (const entry of readdirSync(repoPath(rel), { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) visit(child);
      } else if (/\.ya?ml$/.test(entry.name) || entry.name === 'Kustomization') {
        files.push(parseYamlFile(child, readFileSync(repoPath(child), 'utf8')));
      }
    }
  };
  visit(relDir);
  return files;
}

/** Directories (repository-relative) holding a Kustomization (Components render only inside one). */
export function kustomizationRoots(files: readonly YamlFile[]): string[] {
  return files
    .filter(
      (f) => isKustomizationFile(f.file) && f.documents.some((d) => kindOf(d.value) === 'Kustomization'),
    )
    .map((f) => path.posix.dirname(f.file));
}

let kubectlChecked: boolean | undefined;

/** Is `kubectl kustomize` usable here? (kubectl embeds kustomize.) */
export function kubectlAvailable(): boolean {
  if (kubectlChecked === undefined) {
    try {
      execFileSync('kubectl', ['kustomize', '--help'], { stdio: 'ignore', timeout: 30_000 });
      kubectlChecked = true;
    } catch {
      kubectlChecked = false;
    }
  }
  return kubectlChecked;
}

/**
 * A kustomization rendered by the repository's own renderer (test/support/kustomize.ts), parsed.
 * Works without kubectl; `renderWithKubectl` is the cross-check where kubectl is installed.
 */
export function renderKustomization(relDir: string): YamlFile {
  return parseYamlFile(`kustomize ${relDir}`, kustomizeYaml(repoPath(relDir)));
}

/** `kubectl kustomize <dir>`, parsed; no cluster is contacted. */
export function renderWithKubectl(relDir: string): YamlFile {
  const output = execFileSync('kubectl', ['kustomize', repoPath(relDir)], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseYamlFile(`kubectl kustomize ${relDir}`, output);
}
