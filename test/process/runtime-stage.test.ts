/**
 * The image's runtime stage, proved without Docker: the Dockerfile's runtime-stage instructions are
 * performed in a temporary directory standing for the image's root (production dependencies with the
 * Dockerfile's own `npm ci` flags, the compiled dist/, the PATH link; test/support/dockerfile.ts fails on
 * any instruction it cannot reproduce), the app files are made read-only, and the relay runs from there
 * as the image's non-root user: `--help` through PATH, `check-config --offline`, and a short `start`
 * that relays a change to Kafka and stops gracefully on SIGTERM.
 */
import { expect } from 'chai';
import { spawn, execFileSync, type SpawnOptions } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildDist, parseDockerfile, reproduceStage, type ReproducedStage } from '../support/dockerfile.js';
import { collectTopic, type Collector } from '../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { REPO_ROOT } from '../support/relayProcess.js';
import { waitFor } from '../support/wait.js';

const dockerfile = parseDockerfile(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages[dockerfile.stages.length - 1];
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
const asRoot = process.getuid?.() === 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe(`the image's runtime stage, reproduced without Docker on Node ${process.version} (as ${asRoot ? 'the image user 10001' : 'this non-root user'}, app files read-only)`, function () {
  this.timeout(600_000);
  let tmp: string;
  let image: ReproducedStage;
  let ctx: RelayTestContext;

  before(async function () {
    if (runtime === undefined) throw new Error('Dockerfile: no stage');
    tmp = mkdtempSync(path.join(tmpdir(), 'runtime-stage-'));
    chmodSync(tmp, 0o755); // the image user must reach it
    const dist = path.join(tmp, 'build-dist');
    buildDist(REPO_ROOT, dist);
    const root = path.join(tmp, 'root');
    image = reproduceStage(runtime, root, {
      context: REPO_ROOT,
      stageFiles: (stage, src) => {
        if (stage === 'build' && src === '/app/dist') return dist;
        throw new Error(`COPY --from=${stage} ${src}: unknown build output`);
      },
      npmCi: (cwd, flags) =>
        execFileSync('npm', ['ci', ...flags, '--prefer-offline', '--cache', path.join(tmp, 'npm-cache')], {
          cwd,
          stdio: 'pipe',
        }),
    });
    // As in the image: the app files belong to root and nobody may write them.
    execFileSync('chmod', ['-R', 'a-w', path.join(root, 'app')]);
    ctx = await relayTestContext('runtime-stage');
  });

  after(async () => {
    await ctx?.close();
    if (tmp) {
      execFileSync('chmod', ['-R', 'u+w', tmp]);
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  /** A process of the image: its ENV, its user, PATH with the image's /usr/local/bin first. */
  function imageProcess(argv: string[], env: Record<string, string>): ReturnType<typeof spawn> {
    const options: SpawnOptions = {
      cwd: image.workdir,
      env: {
        PATH: `${path.join(image.root, 'usr/local/bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
        HOME: image.home ?? '/nonexistent',
        ...image.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    };
    if (asRoot && image.user) Object.assign(options, { uid: image.user.uid, gid: image.user.gid });
    const [command = '', ...args] = argv;
    const resolved = command === 'node' ? process.execPath : command;
    return spawn(
      resolved,
      args.map((a) => (a.startsWith('/app/') ? path.join(image.root, a) : a)),
      options,
    );
  }

  async function run(argv: string[], env: Record<string, string> = {}): Promise<Run> {
    const child = imageProcess(argv, env);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    return { code, stdout, stderr };
  }

  it('performs the runtime stage as the Dockerfile says: production dependencies only, its npm flags, non-root user', () => {
    expect(image.ran.find((c) => c.startsWith('npm ci'))).to.match(
      /--omit=dev\b.*--ignore-scripts|--ignore-scripts.*--omit=dev/,
    );
    const modules = readdirSync(path.join(image.workdir, 'node_modules'));
    expect(modules).to.include.members(['kafkajs', 'mongodb', 'pino', 'prom-client', 'convict']);
    for (const dev of ['mocha', 'typescript', 'tsx', 'mongodb-memory-server', 'eslint'])
      expect(modules, dev).to.not.include(dev);
    expect(image.user).to.deep.equal({ uid: 10001, gid: 10001 });
    expect(image.env).to.include({ NODE_ENV: 'production', METRICS_HOST: '0.0.0.0' });
    expect(image.labels['org.opencontainers.image.version']).to.equal(pkg.version);
    expect(statSync(path.join(image.workdir, 'dist/src/cli/main.js')).mode & 0o222, 'read-only').to.equal(0);
  });

  it('puts mongo-kafka-relay on PATH: --help and --version work as the image user', async () => {
    const help = await run(['mongo-kafka-relay', '--help']);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.contain('start').and.contain('check-config').and.contain('token');
    const version = await run(['mongo-kafka-relay', '--version']);
    expect(version.stdout.trim()).to.equal(pkg.version);
  });

  it('check-config --offline validates the configuration without connecting', async function () {
    const unreachable = {
      MONGODB_URI: 'mongodb://127.0.0.1:1/',
      KAFKA_BROKERS: '127.0.0.1:1',
      RELAY_WATCH: 'shop.orders',
    };
    const ok = await run(['mongo-kafka-relay', 'check-config', '--offline'], unreachable);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    const bad = await run(['mongo-kafka-relay', 'check-config', '--offline'], {
      ...unreachable,
      RELAY_WATCH: '',
    });
    expect(bad.code).to.equal(3);
  });

  it('start (ENTRYPOINT + CMD) relays a change to Kafka and stops gracefully on SIGTERM, writing nothing to the app files', async () => {
    const before = listing(path.join(image.root, 'app'));
    const env = {
      ...ctx.env({ RELAY_WATCH: `${ctx.db}.orders` }),
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
    };
    let collector: Collector | undefined;
    const child = imageProcess([...image.entrypoint, ...image.cmd], env);
    const logs: { msg?: string; metrics?: string }[] = [];
    let stderr = '';
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        try {
          logs.push(JSON.parse(buffered.slice(0, nl)) as { msg?: string });
        } catch {
          // not a log line
        }
        buffered = buffered.slice(nl + 1);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));
    try {
      await waitFor(() => logs.some((l) => l.msg === 'change stream open'), {
        timeoutMs: 90_000,
        message: () =>
          `the change stream to open; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-3))}`,
      });
      const metricsUrl = logs.find((l) => l.msg === 'configuration loaded')?.metrics ?? '';
      await waitFor(
        async () =>
          (await fetch(metricsUrl.replace('/metrics', '/readyz')).catch(() => null))?.status === 200,
        {
          timeoutMs: 60_000,
          message: 'the relay to be ready',
        },
      );
      collector = await collectTopic(ctx.topic('orders')); // the relay created the topic at start
      await ctx.mongo
        .db(ctx.db)
        .collection('orders')
        .insertOne({ _id: 'from-the-image' as never, total: 7 });
      const [record] = await collector.waitForCount(1, 60_000);
      expect(JSON.parse(record?.value ?? '{}')).to.deep.include({ operationType: 'insert' });
    } finally {
      child.kill('SIGTERM');
      await collector?.stop();
    }
    expect(await exited, stderr).to.equal(0);
    expect(logs.some((l) => l.msg === 'stopped: every read event acknowledged and checkpointed')).to.equal(
      true,
    );
    expect(listing(path.join(image.root, 'app'))).to.deep.equal(before);
  });
});

/** Every path under dir with its size and mtime: any write would change it. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      const s = statSync(p, { throwIfNoEntry: false });
      out.push(`${p} ${s?.size ?? '-'} ${s?.mtimeMs ?? '-'}`);
      if (entry.isDirectory()) visit(p);
    }
  };
  visit(dir);
  return out.sort();
}
