/**
 * A single-node Kafka broker whose client listener speaks TLS and requires a client certificate
 * (mutual TLS), with a throw-away CA made by openssl: for the relay's Kafka TLS options against a
 * real broker. The broker's certificate names only `kafka.test.internal` (no IP), so a client that
 * connects to 127.0.0.1 must be told that name (KAFKA_SSL_SERVERNAME) to verify it. Uses the same
 * Kafka jars as scripts/services/kafka.ts; binds 127.0.0.1 only; stop() ends the JVM.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ensureKafkaJars, kafkaVersion } from '../../scripts/services/kafka.js';
import { REPO_ROOT, killOnExit, terminate } from '../../scripts/services/state.js';
import { freePort } from './relayProcess.js';
import { waitFor } from './wait.js';

export interface TlsKafka {
  brokers: string;
  servername: string;
  /** PEM files for the client side. */
  files: { ca: string; cert: string; key: string; encryptedKey: string };
  keyPassword: string;
  /** A kafkajs client that trusts the CA and presents the client certificate. */
  client(retries?: number): Kafka;
  stop(): Promise<void>;
}

const SERVERNAME = 'kafka.test.internal';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCertificates(dir: string, keystorePassword: string, keyPassword: string): TlsKafka['files'] {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=relay-test-ca',
  );
  const sign = (name: string, subject: string, ext: string): void => {
    openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      subject,
    );
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  };
  sign(
    'broker',
    `/CN=${SERVERNAME}`,
    `subjectAltName=DNS:${SERVERNAME}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  sign('client', '/CN=mongo-kafka-relay', 'extendedKeyUsage=clientAuth\n');
  openssl(
    dir,
    'pkcs12',
    '-export',
    '-in',
    'broker.pem',
    '-inkey',
    'broker.key',
    '-certfile',
    'ca.pem',
    '-out',
    'broker.p12',
    '-passout',
    `pass:${keystorePassword}`,
    '-name',
    'broker',
  );
  openssl(
    dir,
    'pkcs8',
    '-topk8',
    '-in',
    'client.key',
    '-out',
    'client-encrypted.key',
    '-v2',
    'aes-256-cbc',
    '-passout',
    `pass:${keyPassword}`,
  );
  const at = (f: string): string => path.join(dir, f);
  return {
    ca: at('ca.pem'),
    cert: at('client.pem'),
    key: at('client.key'),
    encryptedKey: at('client-encrypted.key'),
  };
}

export async function startTlsKafka(dir: string, log: (l: string) => void = () => {}): Promise<TlsKafka> {
  mkdirSync(dir, { recursive: true });
  const keystorePassword = randomBytes(8).toString('hex');
  const keyPassword = randomBytes(8).toString('hex');
  const files = makeCertificates(dir, keystorePassword, keyPassword);
  const version = kafkaVersion();
  const libs = await ensureKafkaJars(log, version);
  const [tlsPort, internalPort, controllerPort] = [await freePort(), await freePort(), await freePort()];
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `SSL://127.0.0.1:${tlsPort},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `SSL://127.0.0.1:${tlsPort},INTERNAL://127.0.0.1:${internalPort}`,
    'listener.security.protocol.map': 'SSL:SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'INTERNAL',
    'controller.listener.names': 'CONTROLLER',
    'ssl.keystore.type': 'PKCS12',
    'ssl.keystore.location': path.join(dir, 'broker.p12'),
    'ssl.keystore.password': keystorePassword,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': files.ca,
    'ssl.client.auth': 'required',
    'log.dirs': path.join(dir, 'kraft-logs'),
    'num.partitions': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    'num.network.threads': 2,
    'num.io.threads': 2,
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
  };
  const propsFile = path.join(dir, 'server.properties');
  writeFileSync(
    propsFile,
    `${Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  const jvm = ['-Xms128m', '-Xmx384m', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
  const logProps = [
    `-Dlog4j2.configurationFile=${path.join(REPO_ROOT, 'scripts/kafka/log4j2.yaml')}`,
    `-Dkafka.logs.dir=${path.join(dir, 'logs')}`,
  ];
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  execFileSync(
    'java',
    [
      ...jvm,
      ...logProps,
      '-cp',
      `${libs}/*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      propsFile,
    ],
    { stdio: 'pipe' },
  );
  const logFile = path.join(dir, 'kafka.log');
  const out = openSync(logFile, 'a');
  const child = spawn('java', [...jvm, ...logProps, '-cp', `${libs}/*`, 'kafka.Kafka', propsFile], {
    cwd: dir,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  killOnExit(child);
  const pid = child.pid ?? 0;
  const brokers = `127.0.0.1:${tlsPort}`;
  const client = (retries = 5): Kafka =>
    new Kafka({
      clientId: 'tls-test',
      brokers: [brokers],
      ssl: {
        ca: readFileSync(files.ca),
        cert: readFileSync(files.cert),
        key: readFileSync(files.key),
        servername: SERVERNAME,
      },
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      retry: { retries },
    });
  const stop = async (): Promise<void> => terminate(pid, ['kafka.Kafka', propsFile], 10_000);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`TLS kafka exited: ${readFileSync(logFile, 'utf8').slice(-3000)}`);
        const admin = client(0).admin();
        try {
          await admin.connect();
          return (await admin.describeCluster()).brokers.length > 0;
        } catch {
          return false;
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      {
        timeoutMs: 120_000,
        intervalMs: 500,
        message: () => `the TLS broker; ${readFileSync(logFile, 'utf8').slice(-2000)}`,
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  log(`TLS kafka ${version} at ${brokers} (mTLS, certificate for ${SERVERNAME})`);
  return { brokers, servername: SERVERNAME, files, keyPassword, client, stop };
}
