import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kafkaTlsProblems, kafkaTlsOptions, type KafkaTlsSettings } from '../../../src/config/kafkaTls.js';

const none: KafkaTlsSettings = {
  ssl: false,
  sslCaFile: '',
  sslCertFile: '',
  sslKeyFile: '',
  sslKeyPassword: '',
  sslServername: '',
};

describe('Kafka TLS settings', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kafka-tls-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), `-----${f}-----\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is off, or on with the system CAs, when no file is named', () => {
    expect(kafkaTlsOptions(none)).to.equal(false);
    expect(kafkaTlsOptions({ ...none, ssl: true })).to.equal(true);
  });

  it('reads the CA, client certificate and key, and passes the passphrase and server name', () => {
    const options = kafkaTlsOptions({
      ssl: true,
      sslCaFile: path.join(dir, 'ca.pem'),
      sslCertFile: path.join(dir, 'cert.pem'),
      sslKeyFile: path.join(dir, 'key.pem'),
      sslKeyPassword: 'pw',
      sslServername: 'kafka.internal',
    });
    expect(options).to.be.an('object');
    const o = options as Record<string, unknown>;
    expect(String(o.ca)).to.equal('-----ca.pem-----\n');
    expect(String(o.cert)).to.equal('-----cert.pem-----\n');
    expect(String(o.key)).to.equal('-----key.pem-----\n');
    expect(o).to.include({ passphrase: 'pw', servername: 'kafka.internal' });
  });

  it('refuses TLS files with KAFKA_SSL=false, naming the variables', () => {
    expect(kafkaTlsProblems({ ...none, sslCaFile: '/x/ca.pem' })).to.deep.equal([
      { key: 'kafka.ssl', message: 'must be true when KAFKA_SSL_CA_FILE is set' },
    ]);
  });

  it('refuses a client certificate without its key (and the reverse)', () => {
    expect(kafkaTlsProblems({ ...none, ssl: true, sslCertFile: '/x/c.pem' })).to.deep.equal([
      {
        key: 'kafka.sslKeyFile',
        message:
          'must be set together with KAFKA_SSL_CERT_FILE for mutual TLS (a client certificate needs its key), or both be empty',
      },
    ]);
    expect(kafkaTlsProblems({ ...none, ssl: true, sslKeyFile: '/x/k.pem' })[0]?.key).to.equal(
      'kafka.sslCertFile',
    );
    expect(kafkaTlsProblems({ ...none, ssl: true, sslCertFile: 'c', sslKeyFile: 'k' })).to.deep.equal([]);
  });
});
