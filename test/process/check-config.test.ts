import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { freePort, killAllRelays, runCli, startRelay, startRelayReady } from '../support/relayProcess.js';

interface CheckReport {
  ok: boolean;
  offline?: boolean;
  configuration: {
    ok: boolean;
    problems?: { variable: string | null; key: string | null; message: string; value: string | null }[];
    warnings?: { variable: string; message: string; suggestion?: string }[];
  };
  checks: { check: string; ok: boolean; detail: string }[];
}

/** A TCP server that accepts connections and never answers: a MongoDB that hangs. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('check-config and the CLI on bad input (issues 10.10, 14.11)', function () {
  // Several CLI processes per test, each compiling the sources with tsx: minutes on a loaded machine.
  this.timeout(300_000);
  let ctx: RelayTestContext;
  before(async () => {
    ctx = await relayTestContext('check-config');
  });
  afterEach(() => killAllRelays());
  after(() => ctx.close());

  describe('check-config', () => {
    it('exits 3 naming MONGODB_URI when the driver refuses the connection string', async () => {
      const r = await runCli(['check-config'], ctx.env({ MONGODB_URI: 'mongodb://127.0.0.1:1/?fooBar=1' }));
      expect(r.code, r.stderr).to.equal(3);
      expect(r.stderr).to.match(/MONGODB_URI \(mongodb\.uri\): .*option foobar is not supported/);
      expect(r.stdout).not.to.match(/^ok/m);
    });

    it('prints configuration errors as JSON on stdout with --json, and exits 3', async () => {
      const r = await runCli(
        ['check-config', '--json'],
        ctx.env({ MONGODB_URI: "mongodb://alice:it's_S3cret@127.0.0.1:1/?fooBar=1", KAFKA_SSL: 'maybe' }),
      );
      expect(r.code, r.stderr).to.equal(3);
      const report = JSON.parse(r.stdout) as CheckReport;
      expect(report.ok).to.equal(false);
      expect(report.configuration.ok).to.equal(false);
      expect(report.configuration.problems?.map((p) => p.variable)).to.have.members([
        'MONGODB_URI',
        'KAFKA_SSL',
      ]);
      expect(report.checks).to.deep.equal([]);
      expect(r.stdout + r.stderr).not.to.contain('S3cret');
    });

    it('--offline validates without connecting: unreachable services still pass, warnings are shown', async () => {
      const [mongoPort, kafkaPort] = [await freePort(), await freePort()];
      const env = ctx.env({
        MONGODB_URI: `mongodb://127.0.0.1:${mongoPort}/`,
        KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
        RELAY_CHEKPOINT_MODE: 'batched',
      });
      const human = await runCli(['check-config', '--offline'], env);
      expect(human.code, human.stderr + human.stdout).to.equal(0);
      expect(human.stdout).to.match(/^ok\s+configuration: /m);
      expect(human.stdout).to.match(/^warn\s+RELAY_CHEKPOINT_MODE .*did you mean RELAY_CHECKPOINT_MODE\?/m);
      expect(human.stdout).not.to.match(/mongodb ping|kafka metadata/);
      const json = await runCli(['check-config', '--offline', '--json'], env);
      expect(json.code).to.equal(0);
      const report = JSON.parse(json.stdout) as CheckReport;
      expect(report).to.include({ ok: true, offline: true });
      expect(report.checks).to.deep.equal([]);
      expect(report.configuration.warnings?.map((w) => w.suggestion)).to.deep.equal([
        'RELAY_CHECKPOINT_MODE',
      ]);
    });

    it('--offline still refuses a bad configuration with exit 3', async () => {
      const r = await runCli(['check-config', '--offline'], ctx.env({ RELAY_START_AT: 'version 2' }));
      expect(r.code).to.equal(3);
      expect(r.stderr).to.match(/RELAY_START_AT \(relay\.startAt\)/);
    });

    it('honours serverSelectionTimeoutMS set in the connection string', async () => {
      const silent = await silentServer();
      try {
        const uri = `mongodb://127.0.0.1:${silent.port}/?directConnection=true&serverSelectionTimeoutMS=9000`;
        const r = await runCli(['check-config'], ctx.env({ MONGODB_URI: uri }), 90_000);
        expect(r.code).to.equal(1);
        expect(r.stdout).to.match(/^FAIL mongodb ping .*timed out after 9000 ms/m);
      } finally {
        await silent.close();
      }
    });
  });

  describe('secrets whatever they contain (issue 10.11)', () => {
    const mongoPassword = "it's_M0ngo S3cret";
    const kafkaPassword = "it's_Kafka_S3cret";
    const secretEnv = (): Record<string, string> => {
      const uri = new URL(ctx.env().MONGODB_URI!);
      return ctx.env({
        MONGODB_URI: `mongodb://alice:${encodeURIComponent(mongoPassword)}@${uri.host}/?serverSelectionTimeoutMS=3000`,
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'relay',
        KAFKA_SASL_PASSWORD: kafkaPassword,
      });
    };
    const leaked = (text: string): boolean =>
      [mongoPassword, encodeURIComponent(mongoPassword), kafkaPassword].some((p) => text.includes(p));

    it('check-config never prints them', async () => {
      const r = await runCli(['check-config'], secretEnv(), 90_000);
      expect(leaked(r.stdout + r.stderr), r.stdout + r.stderr).to.equal(false);
      expect(r.stdout).to.match(/mongodb ping mongodb:\/\/\*\*\*@/);
    });

    it('the daemon’s log never holds them, and names a misspelt variable with the closest setting', async () => {
      const relay = await startRelay({ ...secretEnv(), RELAY_MAX_INFLIGHT: '10' });
      const loaded = await relay.waitForLog((l) => l.msg === 'configuration loaded', 60_000);
      expect(leaked(JSON.stringify(loaded)), JSON.stringify(loaded)).to.equal(false);
      expect(loaded.mongodb).to.match(/^mongodb:\/\/\*\*\*@127\.0\.0\.1/);
      const warning = relay.logs.find((l) => l.variable === 'RELAY_MAX_INFLIGHT');
      expect(warning).to.include({ level: 40, suggestion: 'RELAY_MAX_IN_FLIGHT' });
      // Let it try to connect with the credentials (and fail or retry), then look at everything it said.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      await relay.kill('SIGTERM');
      const all = relay.stdout.join('\n') + relay.stderr.join('');
      expect(leaked(all), all.slice(-3000)).to.equal(false);
    });
  });

  describe('token show and status', () => {
    it('token show works without KAFKA_BROKERS: it never talks to Kafka', async () => {
      const r = await runCli(['token', 'show', '--json'], { ...ctx.env(), KAFKA_BROKERS: undefined });
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout)).to.include({ checkpointId: ctx.checkpointId });
    });

    it('status reports the daemon’s readiness when the checkpoint store is unreachable', async () => {
      const port = await freePort();
      const env = ctx.env({
        RELAY_WATCH: `${ctx.db}.status`,
        RELAY_CHECKPOINT_ID: `${ctx.checkpointId}-status`,
        METRICS_PORT: String(port),
      });
      await startRelayReady(env);
      const unreachable = `mongodb://127.0.0.1:${await freePort()}/?serverSelectionTimeoutMS=1000`;
      const statusEnv = { ...env, KAFKA_BROKERS: undefined, RELAY_CHECKPOINT_URI: unreachable };
      const json = await runCli(['status', '--json'], statusEnv);
      expect(json.code, json.stderr).to.equal(1);
      const report = JSON.parse(json.stdout) as {
        checkpoint: { reachable: boolean; error?: string };
        daemon: { reachable: boolean; ready: boolean };
      };
      expect(report.daemon).to.include({ reachable: true, ready: true });
      expect(report.checkpoint.reachable).to.equal(false);
      expect(report.checkpoint.error).to.match(/checkpoint store/);
      const human = await runCli(['status'], statusEnv);
      expect(human.code).to.equal(1);
      expect(human.stdout)
        .to.match(/checkpoint\s+.*not reachable/)
        .and.to.match(/daemon\s+ready at/);
    });
  });
});
