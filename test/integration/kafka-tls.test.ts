/**
 * The relay's Kafka TLS options against a real broker whose listener requires TLS and a client
 * certificate: CA file, client certificate and key (also encrypted, with its passphrase), and the
 * server name to verify. `check-config` proves the admin connection, `start` the producer.
 */
import { expect } from 'chai';
import path from 'node:path';
import { relayTestContext, type RelayTestContext } from '../support/relayFixture.js';
import { killAllRelays, runCli, startRelayReady } from '../support/relayProcess.js';
import { REPO_ROOT } from '../support/relayProcess.js';
import { startTlsKafka, type TlsKafka } from '../support/tlsKafka.js';
import { waitFor } from '../support/wait.js';

describe('Kafka over TLS with a client certificate (mTLS)', function () {
  this.timeout(300_000);
  let kafka: TlsKafka;
  let ctx: RelayTestContext;
  let tls: Record<string, string>;

  before(async () => {
    kafka = await startTlsKafka(path.join(REPO_ROOT, '.services', `tls-kafka-${process.pid}`));
    ctx = await relayTestContext('kafka-tls');
    tls = {
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: kafka.files.ca,
      KAFKA_SSL_CERT_FILE: kafka.files.cert,
      KAFKA_SSL_KEY_FILE: kafka.files.key,
      KAFKA_SSL_SERVERNAME: kafka.servername,
    };
  });
  afterEach(killAllRelays);
  after(async () => {
    await ctx?.close();
    await kafka?.stop();
  });

  it('check-config connects with the CA, the client certificate and the server name', async () => {
    const { code, stdout } = await runCli(['check-config'], ctx.env(tls));
    expect(code, stdout).to.equal(0);
    expect(stdout).to.match(/^ok {3}kafka metadata 127\.0\.0\.1:\d+: 1 broker/m);
  });

  it('fails without the server name: the certificate names kafka.test.internal, not 127.0.0.1', async () => {
    const { KAFKA_SSL_SERVERNAME: _name, ...withoutName } = tls;
    const { code, stdout } = await runCli(['check-config'], {
      ...ctx.env(withoutName),
      KAFKA_SSL_SERVERNAME: '',
    });
    expect(code).to.equal(1);
    expect(stdout).to.match(/^FAIL kafka metadata/m);
  });

  it('fails without the client certificate: the broker requires one', async () => {
    const { code, stdout } = await runCli(['check-config'], {
      ...ctx.env(tls),
      KAFKA_SSL_CERT_FILE: '',
      KAFKA_SSL_KEY_FILE: '',
    });
    expect(code).to.equal(1);
    expect(stdout).to.match(/^FAIL kafka metadata/m);
  });

  it('publishes through TLS with an encrypted client key and its passphrase', async () => {
    const relay = await startRelayReady(
      ctx.env({
        ...tls,
        KAFKA_SSL_KEY_FILE: kafka.files.encryptedKey,
        KAFKA_SSL_KEY_PASSWORD: kafka.keyPassword,
        RELAY_WATCH: `${ctx.db}.orders`,
      }),
    );
    await ctx.mongo
      .db(ctx.db)
      .collection('orders')
      .insertOne({ _id: 'tls' as never });
    const consumer = kafka.client().consumer({ groupId: `tls-${Date.now()}`, maxWaitTimeInMs: 500 });
    const values: string[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [ctx.topic('orders')], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => void values.push(message.value?.toString() ?? ''),
      });
      await waitFor(() => values.length >= 1, {
        timeoutMs: 60_000,
        message: () => `the record over TLS; relay logs: ${relay.stdout.slice(-3).join('\n')}`,
      });
    } finally {
      await consumer.disconnect();
    }
    expect(JSON.parse(values[0] ?? '{}')).to.deep.include({
      operationType: 'insert',
      documentKey: { _id: 'tls' },
    });
    expect(relay.stdout.join('\n')).to.not.contain(kafka.keyPassword);
    expect(await relay.kill('SIGTERM')).to.equal(0);
  });
});
