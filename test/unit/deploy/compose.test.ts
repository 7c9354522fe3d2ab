/**
 * deploy/compose/docker-compose.yml cannot be started here (no Docker engine), so its wiring is
 * checked statically: the replica set, the KRaft broker and the relay's settings must agree. The
 * Dockerfile the relay is built from is checked the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  dig,
  isRecord,
  parseYamlFile,
  RELAY_ENV_VARS,
  REPO_ROOT,
  repoPath,
} from '../../support/deploy-check.js';

const COMPOSE_FILE = 'deploy/compose/docker-compose.yml';
const compose = parseYamlFile(COMPOSE_FILE, readFileSync(repoPath(COMPOSE_FILE), 'utf8'));
const doc: unknown = compose.documents[0]?.value;

function service(name: string): Record<string, unknown> {
  const value = dig(doc, 'services', name);
  if (!isRecord(value)) throw new Error(`service ${name} missing from ${COMPOSE_FILE}`);
  return value;
}

/** Compose `environment` as a map (it may be a map or a list of NAME=value). */
function environment(name: string): Record<string, string> {
  const env = service(name).environment;
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const entry of env) {
      const [key, ...rest] = String(entry).split('=');
      if (key !== undefined) out[key] = rest.join('=');
    }
  } else if (isRecord(env)) {
    for (const [key, value] of Object.entries(env)) out[key] = String(value);
  }
  return out;
}

/** Compose durations such as 40s, 1m30s, in seconds. */
function seconds(duration: unknown): number {
  const text = String(duration);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const factor = unit === 'ms' ? 0.001 : unit === 's' ? 1 : unit === 'm' ? 60 : 3600;
    total += Number(amount) * factor;
  }
  return total;
}

/** "host:port" pairs of a comma-separated listener list, by listener name. */
function listeners(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (value ?? '').split(',')) {
    const match = /^([A-Z_]+):\/\/(.*)$/.exec(part.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) out.set(match[1], match[2]);
  }
  return out;
}

describe('docker compose demo', () => {
  const relayEnv = environment('relay');
  const kafkaEnv = environment('kafka');

  it('parses and defines the mongo, kafka and relay services', () => {
    expect(compose.errors).to.deep.equal([]);
    expect(Object.keys(dig(doc, 'services') as object)).to.include.members(['mongo', 'kafka', 'relay']);
  });

  it('runs mongo:7 as replica set rs0 and initiates it with a member address the relay can resolve', () => {
    const mongo = service('mongo');
    expect(mongo.image).to.equal('mongo:7');
    const command = (mongo.command as unknown[]).map(String);
    expect(command[command.indexOf('--replSet') + 1]).to.equal('rs0');
    const check = JSON.stringify(dig(mongo, 'healthcheck', 'test'));
    expect(check).to.contain('rs.initiate(');
    expect(check).to.contain("_id: 'rs0'");
    expect(check).to.contain("host: 'mongo:27017'");
    expect(check).to.contain('isWritablePrimary');
  });

  it('points MONGODB_URI at the mongo service with replicaSet=rs0 and no credentials', () => {
    const uri = new URL(relayEnv.MONGODB_URI ?? '');
    expect(uri.protocol).to.equal('mongodb:');
    expect(uri.host).to.equal('mongo:27017');
    expect(uri.searchParams.get('replicaSet')).to.equal('rs0');
    expect(uri.username).to.equal('');
    expect(uri.password).to.equal('');
  });

  it('runs apache/kafka:4.1.1 as a single KRaft node acting as broker and controller', () => {
    const kafka = service('kafka');
    expect(kafka.image).to.equal('apache/kafka:4.1.1');
    expect(kafkaEnv.KAFKA_PROCESS_ROLES?.split(',').sort()).to.deep.equal(['broker', 'controller']);
    const nodeId = kafkaEnv.KAFKA_NODE_ID;
    const controller = listeners(kafkaEnv.KAFKA_LISTENERS).get(kafkaEnv.KAFKA_CONTROLLER_LISTENER_NAMES ?? '');
    expect(kafkaEnv.KAFKA_CONTROLLER_QUORUM_VOTERS).to.equal(`${nodeId}@kafka${controller ?? '(none)'}`);
    expect(Object.keys(kafkaEnv).filter((k) => k.includes('ZOOKEEPER'))).to.deep.equal([]);
    expect(kafkaEnv.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).to.equal('1');
  });

  it('points KAFKA_BROKERS at the broker listener advertised on the compose network', () => {
    const advertised = [...listeners(kafkaEnv.KAFKA_ADVERTISED_LISTENERS).values()];
    const brokers = (relayEnv.KAFKA_BROKERS ?? '').split(',');
    expect(brokers.length).to.be.greaterThan(0);
    for (const broker of brokers) {
      expect(advertised).to.include(broker);
      expect(broker.split(':')[0]).to.equal('kafka');
    }
  });

  it('starts the relay only after MongoDB and Kafka report healthy', () => {
    const dependsOn = service('relay').depends_on;
    expect(dig(dependsOn, 'mongo', 'condition')).to.equal('service_healthy');
    expect(dig(dependsOn, 'kafka', 'condition')).to.equal('service_healthy');
    expect(dig(service('mongo'), 'healthcheck', 'test')).to.not.equal(undefined);
    expect(dig(service('kafka'), 'healthcheck', 'test')).to.not.equal(undefined);
  });

  it('builds the relay from the repository Dockerfile and publishes its metrics port on all interfaces', () => {
    const relay = service('relay');
    const context = path.resolve(repoPath('deploy/compose'), String(dig(relay, 'build', 'context')));
    expect(path.relative(REPO_ROOT, context)).to.equal('');
    expect(existsSync(path.join(context, String(dig(relay, 'build', 'dockerfile'))))).to.equal(true);
    expect(relay.command).to.deep.equal(['start']);
    expect(relayEnv.METRICS_HOST).to.equal('0.0.0.0');
    expect((relay.ports as unknown[]).map(String)).to.include(`${relayEnv.METRICS_PORT}:${relayEnv.METRICS_PORT}`);
  });

  it('sets only documented relay variables, watches a demo collection and keeps a single relay', () => {
    expect(Object.keys(relayEnv).filter((k) => !RELAY_ENV_VARS.includes(k))).to.deep.equal([]);
    expect(relayEnv.RELAY_WATCH).to.match(/^\w+\.\w+$/);
    expect(relayEnv.RELAY_CHECKPOINT_ID).to.be.a('string').and.not.equal('');
    expect(relayEnv.KAFKA_TOPIC).to.equal('mongo.{db}.{coll}');
    expect(dig(service('relay'), 'deploy', 'replicas') ?? 1).to.equal(1);
  });

  it('gives the relay a stop grace period longer than its shutdown timeout', () => {
    const timeoutMs = Number(relayEnv.RELAY_SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
    expect(seconds(service('relay').stop_grace_period) * 1000).to.be.greaterThan(timeoutMs);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(repoPath('Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of lines) {
    if (/^ARG\s/i.test(line) && stages.length === 0) continue; // global build arguments
    if (/^FROM\s/i.test(line)) stages.push([]);
    stages[stages.length - 1]?.push(line);
  }
  const build = stages[0] ?? [];
  const runtime = stages[stages.length - 1] ?? [];
  const pkg: unknown = JSON.parse(readFileSync(repoPath('package.json'), 'utf8'));

  it('builds in one stage (npm ci, npm run build, no mongodb-memory-server download) and runs in another', () => {
    expect(stages).to.have.lengthOf(2);
    expect(build[0]).to.equal('FROM ${NODE_IMAGE} AS build');
    expect(build).to.include('ENV MONGOMS_DISABLE_POSTINSTALL=1');
    expect(build.some((l) => /^RUN npm ci\b/.test(l))).to.equal(true);
    expect(build).to.include('RUN npm run build');
    expect(runtime[0]).to.equal('FROM ${NODE_IMAGE} AS runtime');
    expect(text).to.match(/^ARG NODE_IMAGE=node:24-slim$/m);
  });

  it('installs only production dependencies in the runtime image and copies dist/ from the build stage', () => {
    expect(runtime.some((l) => /^RUN npm ci .*--omit=dev/.test(l))).to.equal(true);
    expect(runtime).to.include('COPY --from=build /app/dist ./dist');
    expect(runtime).to.include('ENV NODE_ENV=production');
  });

  it('runs as the non-root uid 10001 that the Kubernetes manifests expect', () => {
    expect(runtime.some((l) => /useradd .*--uid 10001\b/.test(l))).to.equal(true);
    expect(runtime).to.include('USER 10001:10001');
  });

  it('starts the bin entry point with "start", stops on SIGTERM and exposes the metrics port', () => {
    const bin = dig(pkg, 'bin', 'mongo-kafka-relay');
    expect(bin).to.equal('dist/src/cli/main.js');
    expect(runtime).to.include(`ENTRYPOINT ["node", "/app/${String(bin)}"]`);
    expect(runtime).to.include('CMD ["start"]');
    expect(runtime).to.include('STOPSIGNAL SIGTERM');
    expect(runtime).to.include('EXPOSE 9464');
  });

  it('runs Node.js 24 LTS, listens on all interfaces, puts mongo-kafka-relay on PATH and carries OCI labels', () => {
    expect(runtime).to.include('ENV METRICS_HOST=0.0.0.0');
    expect(runtime.some((l) => /ln -s \/app\/dist\/src\/cli\/main\.js \/usr\/local\/bin\/mongo-kafka-relay/.test(l))).to.equal(
      true,
    );
    const label = runtime.find((l) => l.startsWith('LABEL ')) ?? '';
    for (const key of ['version', 'revision', 'source', 'title', 'licenses'])
      expect(label, key).to.contain(`org.opencontainers.image.${key}=`);
    expect(label).to.contain('org.opencontainers.image.version="${VERSION}"');
    expect(runtime).to.include(`ARG VERSION=${String(dig(pkg, 'version'))}`);
  });

  it('keeps the build context small without hiding what the build needs', () => {
    const ignored = readFileSync(repoPath('.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).to.include.members(['node_modules', 'dist', '.git', 'test']);
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
      expect(ignored, needed).to.not.include(needed);
    }
  });
});
