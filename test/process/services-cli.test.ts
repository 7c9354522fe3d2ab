/**
 * Issue 20 item 3: `KAFKA_BROKER_COUNT=3 npm run services:up` failed with `connect ECONNREFUSED
 * 127.0.0.1:<port>` right after another three-node cluster had been stopped. The cluster itself
 * restarts fine; the refused port was a MONGODB_URI still exported from an earlier `. .services/env`,
 * and `up` reported the socket error alone. These runs use a services directory of their own
 * (RELAY_SERVICES_DIR), beside the test services, and stop everything they started.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePort } from '../support/relayProcess.js';

interface CliRun {
  code: number;
  output: string;
}

const TSX = path.resolve('node_modules/.bin/tsx');

function servicesCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      ['scripts/services/cli.ts', ...args],
      { env, timeout: 240_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

/** Processes whose command line names `dir`: what a run in that services directory left behind. */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(dir)) found.push(`${entry}: ${cmdline.slice(0, 160)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function brokersIn(envFile: string): Promise<string> {
  const line = (await readFile(envFile, 'utf8')).split('\n').find((l) => l.startsWith('KAFKA_BROKERS='));
  return line!.slice('KAFKA_BROKERS='.length).replace(/^['"]|['"]$/g, '');
}

describe('services CLI: a three-node Kafka cluster, up and down twice in a row (issue 20 item 3)', function () {
  this.timeout(900_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'relay-services-'));
    env = { ...process.env, RELAY_SERVICES_DIR: dir, KAFKA_BROKER_COUNT: '3', MONGO_KIND: 'stand-in' };
    // The test run's own services are in the environment: these runs must start their own.
    delete env.MONGODB_URI;
    delete env.KAFKA_BROKERS;
  });
  after(async () => {
    await servicesCli(['down', '--wipe'], env);
    const left = processesUnder(dir);
    await rm(dir, { recursive: true, force: true });
    expect(left, 'processes left behind').to.deep.equal([]);
  });

  for (const round of [1, 2]) {
    it(`round ${round}: up starts three brokers that answer, down stops every one of them`, async function () {
      const upRun = await servicesCli(['up'], env);
      expect(upRun.code, upRun.output).to.equal(0);
      const kafka = new Kafka({
        clientId: 'services-cli-test',
        brokers: (await brokersIn(path.join(dir, 'env'))).split(','),
        logLevel: logLevel.NOTHING,
      });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const cluster = await admin.describeCluster();
        expect(cluster.brokers.map((b) => b.nodeId).sort(), 'brokers in the cluster').to.have.length(3);
        const topic = `services-cli-${round}`;
        await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }] });
        const producer = kafka.producer();
        await producer.connect();
        await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: `round ${round}` }] });
        await producer.disconnect();
        const offsets = await admin.fetchTopicOffsets(topic);
        expect(offsets.map((o) => o.high)).to.deep.equal(['1']);
      } finally {
        await admin.disconnect();
      }
      const statusRun = await servicesCli(['status'], env);
      expect(statusRun.output).to.match(/^healthy$/m);
      const downRun = await servicesCli(['down'], env);
      expect(downRun.code, downRun.output).to.equal(0);
      expect(processesUnder(dir), 'processes left after down').to.deep.equal([]);
    });
  }

  it('with a MONGODB_URI left over from an earlier run, up says so, names the way out and leaves nothing running', async function () {
    const staleUri = `mongodb://relay:secret-in-uri@127.0.0.1:${await freePort()}/`;
    const stale: NodeJS.ProcessEnv = { ...env, MONGODB_URI: staleUri };
    delete stale.MONGO_KIND; // the default: a MONGODB_URI that is set is used
    const upRun = await servicesCli(['up'], stale);
    expect(upRun.code, upRun.output).to.not.equal(0);
    expect(upRun.output).to.contain('MONGODB_URI=');
    expect(upRun.output).to.contain('is set in the environment but does not answer');
    expect(upRun.output).to.contain('unset MONGODB_URI');
    expect(upRun.output, 'the password in the URI').to.not.contain('secret-in-uri');
    expect(processesUnder(dir), 'processes left after the failed up').to.deep.equal([]);
  });
});
