/**
 * A small kustomize renderer, so the manifests are rendered and checked where `kubectl` is not
 * installed (as on this project's machines). It covers the kustomize features the repository and its
 * test fixtures use, with kustomize's semantics:
 *  - resources (files and directories), components (kind Component, applied to the parent's
 *    resources), nested to any depth;
 *  - configMapGenerator (literals, envs, files; behavior create / merge / replace; a content-hash
 *    name suffix unless disabled) and generatorOptions;
 *  - patches / patchesStrategicMerge (strategic merge with the Kubernetes merge keys used here and
 *    `$patch: delete`), patchesJson6902 and JSON 6902 patches in `patches`;
 *  - namespace, namePrefix, nameSuffix, labels / commonLabels (selectors and templates),
 *    commonAnnotations, images, replicas, replacements (sourceValue or a source field; `*`,
 *    `[key=value]` and index path segments; delimiter/index options);
 *  - name references from pod specs (ConfigMaps, Secrets) and scaleTargetRef to renamed objects,
 *    resolved within the kustomization where both meet, so two relays of one overlay keep their own;
 *  - `config.kubernetes.io/local-config: "true"` objects are dropped from the output.
 * Anything else in a kustomization is an error here, never a silent pass. It is a test tool, not a
 * kustomize replacement: where `kubectl` exists, the tests can also render with it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Resource {
  obj: JsonObject;
  /** Every name this object had, oldest first (the last one is the current name). */
  names: string[];
  hashSuffix: boolean;
}

/** A name field in a referrer, bound to the object it names once both meet in one kustomization. */
interface NameRef {
  holder: JsonObject;
  field: string;
  kind: string;
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set([
  'apiVersion',
  'kind',
  'metadata',
  'resources',
  'components',
  'configMapGenerator',
  'generatorOptions',
  'patches',
  'patchesStrategicMerge',
  'patchesJson6902',
  'namespace',
  'namePrefix',
  'nameSuffix',
  'labels',
  'commonLabels',
  'commonAnnotations',
  'images',
  'replicas',
  'replacements',
]);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
  'StorageClass',
  'PersistentVolume',
]);
const WORKLOADS_WITH_SELECTOR = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']);
const LOCAL_CONFIG = 'config.kubernetes.io/local-config';

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

function kindOf(r: Resource): string {
  return typeof r.obj.kind === 'string' ? r.obj.kind : '';
}

function metadata(obj: JsonObject): JsonObject {
  if (!isObject(obj.metadata)) obj.metadata = {};
  return obj.metadata as JsonObject;
}

function nameOf(r: Resource): string {
  return r.names[r.names.length - 1] ?? '';
}

function rename(r: Resource, name: string): void {
  metadata(r.obj).name = name;
  r.names.push(name);
}

function child(obj: Json | undefined, ...keys: string[]): Json | undefined {
  let current: Json | undefined = obj;
  for (const key of keys) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** The object at keys, created when missing (create) or undefined. */
function objectAt(obj: JsonObject, keys: string[], create: boolean): JsonObject | undefined {
  let current = obj;
  for (const key of keys) {
    const next = current[key];
    if (isObject(next)) current = next;
    else if (create && (next === undefined || next === null)) current = current[key] = {};
    else return undefined;
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

function parseYaml(text: string, where: string): Json[] {
  const out: Json[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${where}: not valid YAML: ${doc.errors[0]?.message ?? ''}`);
    const value = doc.toJS() as Json;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
}

function loadKustomization(dir: string): JsonObject {
  const file = kustomizationFile(dir);
  if (file === undefined) throw new Error(`${dir}: no kustomization file`);
  const [doc] = parseYaml(readFileSync(file, 'utf8'), file);
  if (!isObject(doc)) throw new Error(`${file}: not a mapping`);
  for (const key of Object.keys(doc)) {
    if (!SUPPORTED_FIELDS.has(key)) throw new Error(`${file}: the test renderer does not support "${key}"`);
  }
  return doc;
}

function strings(k: JsonObject, field: string): string[] {
  const value = k[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw new Error(`${field} must be a list of strings`);
  return value as string[];
}

function objects(k: JsonObject, field: string): JsonObject[] {
  const value = k[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every(isObject)) throw new Error(`${field} must be a list of mappings`);
  return value as JsonObject[];
}

function readResources(file: string): Resource[] {
  return parseYaml(readFileSync(file, 'utf8'), file).flatMap((doc) => {
    const items = isObject(doc) && String(doc.kind ?? '').endsWith('List') ? child(doc, 'items') : [doc];
    return (Array.isArray(items) ? items : []).filter(isObject).map((obj) => ({
      obj,
      names: [String(child(obj, 'metadata', 'name') ?? '')],
      hashSuffix: false,
    }));
  });
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

class Build {
  readonly bindings = new Map<NameRef, Resource>();

  /** Builds a Kustomization directory into a fresh list of resources. */
  kustomization(dir: string): Resource[] {
    const k = loadKustomization(dir);
    if (k.kind === 'Component') throw new Error(`${dir}: a Component cannot be built on its own`);
    return this.apply(dir, k, []);
  }

  /** Applies a kustomization (or a component) onto `list`. */
  private apply(dir: string, k: JsonObject, list: Resource[]): Resource[] {
    for (const entry of strings(k, 'resources')) {
      const target = path.resolve(dir, entry);
      if (statSync(target).isDirectory()) list.push(...this.kustomization(target));
      else list.push(...readResources(target));
    }
    for (const entry of strings(k, 'components')) {
      const componentDir = path.resolve(dir, entry);
      const component = loadKustomization(componentDir);
      if (component.kind !== 'Component') throw new Error(`${componentDir}: not a Component`);
      list = this.apply(componentDir, component, list);
    }
    list = generateConfigMaps(dir, k, list);
    for (const entry of strings(k, 'patchesStrategicMerge')) patchFromText(dir, entry, undefined, list);
    for (const patch of objects(k, 'patches')) {
      const text =
        typeof patch.path === 'string'
          ? readFileSync(path.resolve(dir, patch.path), 'utf8')
          : typeof patch.patch === 'string'
            ? patch.patch
            : undefined;
      if (text === undefined) throw new Error(`${dir}: a patch needs path or patch`);
      applyPatchText(text, isObject(patch.target) ? patch.target : undefined, list, dir);
    }
    if (typeof k.namespace === 'string') {
      for (const r of list) if (!CLUSTER_SCOPED.has(kindOf(r))) metadata(r.obj).namespace = k.namespace;
    }
    const prefix = typeof k.namePrefix === 'string' ? k.namePrefix : '';
    const suffix = typeof k.nameSuffix === 'string' ? k.nameSuffix : '';
    if (prefix !== '' || suffix !== '') {
      for (const r of list) if (!CLUSTER_SCOPED.has(kindOf(r))) rename(r, `${prefix}${nameOf(r)}${suffix}`);
    }
    if (isObject(k.commonLabels)) addLabels(list, stringMap(k.commonLabels), true, true);
    for (const entry of objects(k, 'labels')) {
      const selectors = entry.includeSelectors === true;
      addLabels(list, stringMap(entry.pairs), selectors, selectors || entry.includeTemplates === true);
    }
    if (isObject(k.commonAnnotations)) addAnnotations(list, stringMap(k.commonAnnotations));
    for (const entry of objects(k, 'patchesJson6902')) {
      if (typeof entry.path !== 'string') throw new Error(`${dir}: patchesJson6902 needs a path`);
      applyPatchText(
        readFileSync(path.resolve(dir, entry.path), 'utf8'),
        isObject(entry.target) ? entry.target : {},
        list,
        dir,
      );
    }
    for (const entry of objects(k, 'replicas')) {
      for (const r of list)
        if (WORKLOADS_WITH_SELECTOR.has(kindOf(r)) && r.names.includes(String(entry.name)))
          objectAt(r.obj, ['spec'], true)!.replicas = entry.count ?? null;
    }
    for (const entry of objects(k, 'images')) setImages(list, entry);
    for (const entry of objects(k, 'replacements')) replace(list, entry);
    this.bindNameRefs(list);
    return list;
  }

  /** Binds every still unbound reference that names exactly one object of `list`. */
  private bindNameRefs(list: Resource[]): void {
    for (const referrer of list) {
      for (const ref of nameRefs(referrer.obj)) {
        if ([...this.bindings.keys()].some((b) => b.holder === ref.holder && b.field === ref.field)) continue;
        const name = String(ref.holder[ref.field]);
        const matches = list.filter(
          (r) => kindOf(r) === ref.kind && r.names.includes(name) && r !== referrer,
        );
        if (matches.length === 1 && matches[0] !== undefined) this.bindings.set(ref, matches[0]);
      }
    }
  }

  /** Hash suffixes, then every bound reference set to its object's final name. */
  finish(list: Resource[]): JsonObject[] {
    for (const r of list) if (r.hashSuffix) rename(r, `${nameOf(r)}-${configMapHash(r.obj)}`);
    this.bindNameRefs(list);
    for (const [ref, target] of this.bindings) ref.holder[ref.field] = nameOf(target);
    return list
      .filter((r) => child(r.obj, 'metadata', 'annotations', LOCAL_CONFIG) !== 'true')
      .map((r) => r.obj);
  }
}

function stringMap(value: Json | undefined): Record<string, string> {
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string'))
    throw new Error('expected a map of strings');
  return value as Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// configMapGenerator
// ---------------------------------------------------------------------------------------------

function parseEnvFile(text: string, where: string): [string, string][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const eq = line.indexOf('=');
      if (eq <= 0) throw new Error(`${where}: "${line}" is not KEY=VALUE`);
      return [line.slice(0, eq), line.slice(eq + 1)];
    });
}

function generateConfigMaps(dir: string, k: JsonObject, list: Resource[]): Resource[] {
  const options = isObject(k.generatorOptions) ? k.generatorOptions : {};
  for (const gen of objects(k, 'configMapGenerator')) {
    const name = String(gen.name ?? '');
    const data: Record<string, string> = {};
    for (const file of strings(gen, 'envs')) {
      const full = path.resolve(dir, file);
      for (const [key, value] of parseEnvFile(readFileSync(full, 'utf8'), full)) data[key] = value;
    }
    for (const literal of strings(gen, 'literals')) {
      const eq = literal.indexOf('=');
      if (eq <= 0)
        throw new Error(`${dir}: configMapGenerator ${name}: literal "${literal}" is not KEY=VALUE`);
      data[literal.slice(0, eq)] = literal.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
    for (const file of strings(gen, 'files')) {
      const eq = file.indexOf('=');
      const [key, rel] = eq > 0 ? [file.slice(0, eq), file.slice(eq + 1)] : [path.basename(file), file];
      data[key] = readFileSync(path.resolve(dir, rel), 'utf8');
    }
    const genOptions = { ...options, ...(isObject(gen.options) ? gen.options : {}) };
    const behavior = typeof gen.behavior === 'string' ? gen.behavior : 'create';
    if (behavior === 'create') {
      const obj: JsonObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data };
      if (isObject(genOptions.labels)) metadata(obj).labels = clone(genOptions.labels);
      if (isObject(genOptions.annotations)) metadata(obj).annotations = clone(genOptions.annotations);
      list.push({ obj, names: [name], hashSuffix: genOptions.disableNameSuffixHash !== true });
      continue;
    }
    const existing = list.filter((r) => kindOf(r) === 'ConfigMap' && r.names.includes(name));
    if (existing.length !== 1 || existing[0] === undefined)
      throw new Error(`${dir}: configMapGenerator ${name} (${behavior}) finds ${existing.length} ConfigMaps`);
    const target = existing[0];
    if (behavior === 'merge') target.obj.data = { ...stringMap(target.obj.data ?? {}), ...data };
    else if (behavior === 'replace') target.obj.data = data;
    else throw new Error(`${dir}: configMapGenerator ${name}: unknown behavior "${behavior}"`);
  }
  return list;
}

/**
 * kustomize's ConfigMap hash as its hasher computes it (sha256 of the JSON of data, kind and name; the
 * first 10 hex digits with 0,1,3,a,e swapped for DNS-safe letters). Not byte-compared with a real
 * kustomize here; what the tests rely on is that it changes with the data and nothing else.
 */
export function configMapHash(obj: JsonObject): string {
  const data = isObject(obj.data) ? obj.data : {};
  const sorted = Object.fromEntries(
    Object.keys(data)
      .sort()
      .map((key) => [key, data[key] ?? '']),
  );
  const json = JSON.stringify({
    data: sorted,
    kind: 'ConfigMap',
    name: child(obj, 'metadata', 'name') ?? '',
  });
  const hex = createHash('sha256').update(json).digest('hex').slice(0, 10);
  const swap: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return [...hex].map((c) => swap[c] ?? c).join('');
}

// ---------------------------------------------------------------------------------------------
// Patches
// ---------------------------------------------------------------------------------------------

function selects(r: Resource, target: JsonObject): boolean {
  if (typeof target.kind === 'string' && target.kind !== kindOf(r)) return false;
  if (typeof target.name === 'string') {
    const pattern = new RegExp(`^(?:${target.name})$`);
    if (!r.names.some((n) => pattern.test(n))) return false;
  }
  const apiVersion = String(r.obj.apiVersion ?? '');
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (typeof target.group === 'string' && target.group !== group) return false;
  if (typeof target.version === 'string' && target.version !== version) return false;
  if (typeof target.namespace === 'string' && target.namespace !== child(r.obj, 'metadata', 'namespace'))
    return false;
  if (typeof target.labelSelector === 'string') {
    const labels = child(r.obj, 'metadata', 'labels');
    for (const term of target.labelSelector.split(',')) {
      const [key, value] = term.split('=');
      if (key === undefined || !isObject(labels) || labels[key.trim()] !== value?.trim()) return false;
    }
  }
  return true;
}

function patchFromText(dir: string, entry: string, target: JsonObject | undefined, list: Resource[]): void {
  const inline = entry.includes('\n') || /^\s*[\w$-]+\s*:/.test(entry);
  applyPatchText(inline ? entry : readFileSync(path.resolve(dir, entry), 'utf8'), target, list, dir);
}

function applyPatchText(text: string, target: JsonObject | undefined, list: Resource[], where: string): void {
  for (const patch of parseYaml(text, where)) {
    if (Array.isArray(patch)) {
      if (target === undefined) throw new Error(`${where}: a JSON 6902 patch needs a target`);
      const matched = list.filter((r) => selects(r, target));
      if (matched.length === 0) throw new Error(`${where}: the JSON patch target matches nothing`);
      for (const r of matched) r.obj = jsonPatch(r.obj, patch, where);
      continue;
    }
    if (!isObject(patch)) throw new Error(`${where}: a patch must be a mapping or a list`);
    const own: JsonObject = { kind: patch.kind ?? null };
    if (typeof child(patch, 'metadata', 'name') === 'string')
      own.name = child(patch, 'metadata', 'name') ?? null;
    const selector = target ?? own;
    const matched = list.filter((r) => selects(r, selector));
    if (matched.length === 0) throw new Error(`${where}: the patch target matches nothing`);
    for (const r of matched) {
      const keepName = nameOf(r);
      const merged = strategicMerge(r.obj, stripIdentity(patch, target !== undefined), '');
      if (!isObject(merged)) throw new Error(`${where}: a patch deleted ${keepName}`);
      r.obj = merged;
      metadata(r.obj).name = keepName;
    }
  }
}

/** A targeted patch may name any object; its own name must not rename the target. */
function stripIdentity(patch: JsonObject, targeted: boolean): JsonObject {
  if (!targeted) return patch;
  const copy = clone(patch);
  if (isObject(copy.metadata)) delete copy.metadata.name;
  return copy;
}

/** Kubernetes merge keys of the lists this repository patches (other lists are replaced). */
function mergeKey(field: string, items: Json[]): string | undefined {
  if (
    ['containers', 'initContainers', 'ephemeralContainers', 'env', 'volumes', 'imagePullSecrets'].includes(
      field,
    )
  )
    return 'name';
  if (field === 'volumeMounts') return 'mountPath';
  if (field === 'ports')
    return items.some((i) => isObject(i) && 'containerPort' in i) ? 'containerPort' : 'port';
  return undefined;
}

function strategicMerge(base: Json | undefined, patch: Json, field: string): Json | undefined {
  if (isObject(patch)) {
    if (patch.$patch === 'delete') return undefined;
    if (patch.$patch === 'replace') {
      const copy = clone(patch);
      delete copy.$patch;
      return copy;
    }
    const out: JsonObject = isObject(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) continue;
      if (value === null) delete out[key];
      else {
        const merged = strategicMerge(out[key], value, key);
        if (merged === undefined) delete out[key];
        else out[key] = merged;
      }
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    const key = mergeKey(field, [...base, ...patch]);
    if (key === undefined) return clone(patch);
    const out: Json[] = [...base];
    for (const item of patch) {
      const id = isObject(item) ? item[key] : undefined;
      const index = out.findIndex((b) => isObject(b) && id !== undefined && b[key] === id);
      if (index < 0) {
        if (!(isObject(item) && item.$patch === 'delete')) out.push(clone(item));
        continue;
      }
      const merged = strategicMerge(out[index], item, '');
      if (merged === undefined) out.splice(index, 1);
      else out[index] = merged;
    }
    return out;
  }
  return clone(patch);
}

function pointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new Error(`JSON pointer "${p}" must start with /`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Applies in place: objects elsewhere in the tree keep their identity (and their name bindings). */
function jsonPatch(doc: JsonObject, ops: Json[], where: string): JsonObject {
  const root = doc;
  const resolve = (p: string): { parent: Json; key: string } => {
    const parts = pointer(p);
    const key = parts.pop();
    if (key === undefined) throw new Error(`${where}: cannot patch the whole object`);
    let parent: Json = root;
    for (const part of parts) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(part)]
        : isObject(parent)
          ? parent[part]
          : undefined;
      if (next === undefined) throw new Error(`${where}: JSON patch path ${p} does not exist`);
      parent = next;
    }
    return { parent, key };
  };
  const get = (p: string): Json => {
    const { parent, key } = resolve(p);
    const value = Array.isArray(parent) ? parent[Number(key)] : isObject(parent) ? parent[key] : undefined;
    if (value === undefined) throw new Error(`${where}: JSON patch path ${p} does not exist`);
    return value;
  };
  const remove = (p: string): void => {
    const { parent, key } = resolve(p);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else if (isObject(parent) && key in parent) delete parent[key];
    else throw new Error(`${where}: JSON patch remove ${p}: no such field`);
  };
  const add = (p: string, value: Json, replaceOnly: boolean): void => {
    const { parent, key } = resolve(p);
    if (Array.isArray(parent)) {
      if (replaceOnly) parent[Number(key)] = value;
      else parent.splice(key === '-' ? parent.length : Number(key), 0, value);
    } else if (isObject(parent)) {
      if (replaceOnly && !(key in parent))
        throw new Error(`${where}: JSON patch replace ${p}: no such field`);
      parent[key] = value;
    } else throw new Error(`${where}: JSON patch ${p}: parent is not a container`);
  };
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string')
      throw new Error(`${where}: a JSON patch operation needs op and path`);
    const value = op.value ?? null;
    switch (op.op) {
      case 'add':
        add(op.path, clone(value), false);
        break;
      case 'replace':
        add(op.path, clone(value), true);
        break;
      case 'remove':
        remove(op.path);
        break;
      case 'copy':
        add(op.path, clone(get(String(op.from))), false);
        break;
      case 'move': {
        const moved = get(String(op.from));
        remove(String(op.from));
        add(op.path, moved, false);
        break;
      }
      case 'test':
        if (JSON.stringify(get(op.path)) !== JSON.stringify(value))
          throw new Error(`${where}: JSON patch test ${op.path} failed`);
        break;
      default:
        throw new Error(`${where}: unknown JSON patch op "${op.op}"`);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Labels, annotations, images, name references, replacements
// ---------------------------------------------------------------------------------------------

function templatePaths(kind: string): string[][] {
  if (WORKLOADS_WITH_SELECTOR.has(kind) || kind === 'Job') return [['spec', 'template', 'metadata']];
  if (kind === 'CronJob')
    return [
      ['spec', 'jobTemplate', 'metadata'],
      ['spec', 'jobTemplate', 'spec', 'template', 'metadata'],
    ];
  return [];
}

function addLabels(
  list: Resource[],
  labels: Record<string, string>,
  selectors: boolean,
  templates: boolean,
): void {
  for (const r of list) {
    const kind = kindOf(r);
    Object.assign(objectAt(r.obj, ['metadata', 'labels'], true)!, labels);
    if (templates)
      for (const p of templatePaths(kind)) Object.assign(objectAt(r.obj, [...p, 'labels'], true)!, labels);
    if (!selectors) continue;
    const selectorPath = WORKLOADS_WITH_SELECTOR.has(kind)
      ? ['spec', 'selector', 'matchLabels']
      : kind === 'Service'
        ? ['spec', 'selector']
        : kind === 'NetworkPolicy'
          ? ['spec', 'podSelector', 'matchLabels']
          : kind === 'PodDisruptionBudget'
            ? ['spec', 'selector', 'matchLabels']
            : undefined;
    if (selectorPath) Object.assign(objectAt(r.obj, selectorPath, true)!, labels);
  }
}

function addAnnotations(list: Resource[], annotations: Record<string, string>): void {
  for (const r of list) {
    Object.assign(objectAt(r.obj, ['metadata', 'annotations'], true)!, annotations);
    for (const p of templatePaths(kindOf(r)))
      Object.assign(objectAt(r.obj, [...p, 'annotations'], true)!, annotations);
  }
}

function podSpecs(obj: JsonObject): JsonObject[] {
  const kind = String(obj.kind ?? '');
  const at =
    kind === 'Pod'
      ? child(obj, 'spec')
      : kind === 'CronJob'
        ? child(obj, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
        : child(obj, 'spec', 'template', 'spec');
  return isObject(at) ? [at] : [];
}

function list(value: Json | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function setImages(resources: Resource[], entry: JsonObject): void {
  for (const r of resources) {
    for (const pod of podSpecs(r.obj)) {
      for (const container of [...list(pod.containers), ...list(pod.initContainers)]) {
        const image = String(container.image ?? '');
        const name = image.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
        if (name !== entry.name) continue;
        const tag = /:([^:/@]+)(@|$)/.exec(image.replace(name, ''))?.[1];
        const newName = typeof entry.newName === 'string' ? entry.newName : name;
        if (typeof entry.digest === 'string') container.image = `${newName}@${entry.digest}`;
        else {
          const newTag = typeof entry.newTag === 'string' ? entry.newTag : tag;
          container.image = newTag === undefined ? newName : `${newName}:${newTag}`;
        }
      }
    }
  }
}

/** Name fields that refer to other objects of the build. */
function nameRefs(obj: JsonObject): NameRef[] {
  const refs: NameRef[] = [];
  const push = (holder: Json | undefined, field: string, kind: string): void => {
    if (isObject(holder) && typeof holder[field] === 'string') refs.push({ holder, field, kind });
  };
  for (const pod of podSpecs(obj)) {
    for (const container of [...list(pod.containers), ...list(pod.initContainers)]) {
      for (const from of list(container.envFrom)) {
        push(from.configMapRef, 'name', 'ConfigMap');
        push(from.secretRef, 'name', 'Secret');
      }
      for (const env of list(container.env)) {
        push(child(env, 'valueFrom', 'configMapKeyRef'), 'name', 'ConfigMap');
        push(child(env, 'valueFrom', 'secretKeyRef'), 'name', 'Secret');
      }
    }
    for (const volume of list(pod.volumes)) {
      push(volume.configMap, 'name', 'ConfigMap');
      push(volume.secret, 'secretName', 'Secret');
      for (const source of list(child(volume, 'projected', 'sources'))) {
        push(source.configMap, 'name', 'ConfigMap');
        push(source.secret, 'name', 'Secret');
      }
    }
  }
  if (obj.kind === 'HorizontalPodAutoscaler' || obj.kind === 'ScaledObject') {
    const ref = child(obj, 'spec', 'scaleTargetRef');
    push(ref, 'name', isObject(ref) && typeof ref.kind === 'string' ? ref.kind : 'Deployment');
  }
  return refs;
}

/** Field paths as kustomize's replacements write them: a.b.*.c, a.[name=x].b, a.0.b. */
function fieldPathSegments(fieldPath: string): string[] {
  const segments: string[] = [];
  let current = '';
  let depth = 0;
  for (const c of fieldPath) {
    if (c === '[') depth += 1;
    if (c === ']') depth -= 1;
    if (c === '.' && depth === 0) {
      segments.push(current);
      current = '';
    } else current += c;
  }
  segments.push(current);
  return segments;
}

/** Every (holder, key) a field path reaches (wildcards fan out). */
function reach(
  node: Json,
  segments: string[],
  create: boolean,
): { holder: JsonObject | Json[]; key: string }[] {
  const [head, ...rest] = segments;
  if (head === undefined) return [];
  let keys: string[];
  if (head === '*')
    keys = Array.isArray(node) ? node.map((_, i) => String(i)) : isObject(node) ? Object.keys(node) : [];
  else if (/^\[.+=.*\]$/.test(head) && Array.isArray(node)) {
    const [k, v] = head.slice(1, -1).split('=');
    keys = node.flatMap((item, i) => (isObject(item) && k !== undefined && item[k] === v ? [String(i)] : []));
  } else keys = [head];
  const out: { holder: JsonObject | Json[]; key: string }[] = [];
  for (const key of keys) {
    if (!Array.isArray(node) && !isObject(node)) continue;
    if (rest.length === 0) {
      out.push({ holder: node, key });
      continue;
    }
    let next: Json | undefined = Array.isArray(node) ? node[Number(key)] : node[key];
    if ((next === undefined || next === null) && create && isObject(node)) next = node[key] = {};
    if (next !== undefined && next !== null) out.push(...reach(next, rest, create));
  }
  return out;
}

function valueAt(holder: JsonObject | Json[], key: string): Json | undefined {
  return Array.isArray(holder) ? holder[Number(key)] : holder[key];
}

function replace(resources: Resource[], entry: JsonObject): void {
  let value: Json;
  if (entry.sourceValue !== undefined) value = entry.sourceValue;
  else {
    const source = isObject(entry.source) ? entry.source : {};
    const matches = resources.filter((r) =>
      selects(r, { kind: source.kind ?? null, name: source.name ?? null }),
    );
    if (matches.length !== 1 || matches[0] === undefined)
      throw new Error(`replacements: the source matches ${matches.length} objects`);
    const found = reach(
      matches[0].obj,
      fieldPathSegments(String(source.fieldPath ?? 'metadata.name')),
      false,
    );
    const raw = found[0] ? valueAt(found[0].holder, found[0].key) : undefined;
    if (raw === undefined)
      throw new Error(`replacements: the source field ${String(source.fieldPath)} is missing`);
    value = raw;
    const options = isObject(source.options) ? source.options : {};
    if (typeof options.delimiter === 'string')
      value = String(value).split(options.delimiter)[Number(options.index ?? 0)] ?? '';
  }
  for (const target of list(entry.targets)) {
    const select = isObject(target.select) ? target.select : {};
    const options = isObject(target.options) ? target.options : {};
    for (const r of resources.filter((res) => selects(res, select))) {
      for (const fieldPath of Array.isArray(target.fieldPaths) ? target.fieldPaths : []) {
        const places = reach(r.obj, fieldPathSegments(String(fieldPath)), options.create === true);
        if (places.length === 0 && options.create !== true)
          throw new Error(`replacements: ${String(fieldPath)} not found in ${nameOf(r)}`);
        for (const { holder, key } of places) {
          let next: Json = value;
          if (typeof options.delimiter === 'string') {
            const parts = String(valueAt(holder, key) ?? '').split(options.delimiter);
            parts[Number(options.index ?? 0)] = String(value);
            next = parts.join(options.delimiter);
          }
          if (Array.isArray(holder)) holder[Number(key)] = next;
          else holder[key] = next;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** Renders a kustomization directory (absolute) into its objects, as `kubectl kustomize` would. */
export function kustomizeObjects(dir: string): JsonObject[] {
  const build = new Build();
  return build.finish(build.kustomization(dir));
}

/** The rendered objects as one multi-document YAML text. */
export function kustomizeYaml(dir: string): string {
  return kustomizeObjects(dir)
    .map((o) => stringify(o))
    .join('---\n');
}
