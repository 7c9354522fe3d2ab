import { expect } from 'chai';
import { Writable } from 'node:stream';
import { redactSecrets, redactUri } from '../../../src/config/redact.js';
import { createLogger } from '../../../src/app/logger.js';
import { configErrorFrom, configFrom } from './helpers.js';

/** Passwords a regular expression would trip over; each must vanish from every output. */
const AWKWARD_PASSWORDS = [
  "it's_S3cret",
  'p a s s',
  'semi;colon"quote',
  'sl/ash',
  'h#sh?q',
  'x@y@z',
  'pct%zz',
];

function captureLogs(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, sink };
}

describe('secret redaction (issue 10.11)', () => {
  describe('redactUri', () => {
    it('masks credentials and secret options with the connection-string parser', () => {
      expect(redactUri('mongodb://admin:s3cret@db1:27017,db2/?replicaSet=rs0')).to.equal(
        'mongodb://***@db1:27017,db2/?replicaSet=rs0',
      );
      expect(redactUri('mongodb+srv://u:p@cluster0.example.net/db')).to.equal(
        'mongodb+srv://***@cluster0.example.net/db',
      );
      expect(
        redactUri('mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok3n'),
      ).not.to.contain('tok3n');
      expect(redactUri('mongodb://h/?tls=true&tlsCertificateKeyFilePassword=k3yp4ss')).not.to.contain(
        'k3yp4ss',
      );
    });

    it("masks a password with a quote: mongodb://alice:it's_S3cret@host/", () => {
      expect(redactUri("mongodb://alice:it's_S3cret@host/")).to.equal('mongodb://***@host/');
    });

    for (const password of AWKWARD_PASSWORDS) {
      it(`masks the raw password ${JSON.stringify(password)}, even when the string does not parse`, () => {
        const out = redactUri(`mongodb://alice:${password}@db.example:27017/app`);
        expect(out).not.to.contain(password);
        expect(out).to.contain('db.example:27017');
      });
    }

    it('leaves a connection string without credentials as it is', () => {
      expect(redactUri('mongodb://127.0.0.1:27017/?replicaSet=rs0')).to.equal(
        'mongodb://127.0.0.1:27017/?replicaSet=rs0',
      );
    });
  });

  describe('redactSecrets (free text such as driver error messages)', () => {
    it('masks every connection string inside a message', () => {
      const text =
        "connect to mongodb://alice:it's_S3cret@h1/ failed; also kafka://u:pw@k:9092 and https://a:b@x/";
      const out = redactSecrets(text);
      for (const secret of ["it's_S3cret", 'pw@', 'a:b@']) expect(out).not.to.contain(secret);
      expect(out).to.contain('h1/').and.to.contain('k:9092');
    });

    it('masks the configured secrets wherever they appear, in any spelling', () => {
      configFrom({
        MONGODB_URI: 'mongodb://alice:Gr8%20pass%2Fword@db.example/',
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'relay',
        KAFKA_SASL_PASSWORD: 'kafka-S3cret!',
      });
      const out = redactSecrets('auth failed for Gr8 pass/word, Gr8%20pass%2Fword and kafka-S3cret! (SASL)');
      expect(out).not.to.match(/Gr8|kafka-S3cret/);
    });
  });

  describe('the logger', () => {
    it('keeps secrets out of every log line: messages, errors and any field', () => {
      configFrom({
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'relay',
        KAFKA_SASL_PASSWORD: 'hunter22',
      });
      const { lines, sink } = captureLogs();
      const log = createLogger('info', sink);
      log.info("using mongodb://root:it's_S3cret@h/");
      log.error({ err: new Error("failed mongodb://root:it's_S3cret@h/") }, 'boom');
      log.info(
        { mongodb: { uri: 'mongodb://root:hunter2@h/' }, kafka: { saslPassword: 'hunter22' } },
        'config',
      );
      log.warn({ broker: { sasl: { password: 'hunter22' } }, note: 'password hunter22 rejected' }, 'kafkajs');
      expect(lines).to.have.length(4);
      for (const line of lines) expect(line).not.to.match(/S3cret|hunter2/);
    });
  });

  describe('configuration errors', () => {
    it('show a bad connection string redacted, never its password', () => {
      const error = configErrorFrom({ MONGODB_URI: "mongodb://alice:it's_S3cret@db.example/?fooBar=1" });
      expect(error.message).to.contain('value was "mongodb://***@db.example/?fooBar=1"');
      expect(error.message).not.to.contain('S3cret');
    });

    it('say "not set" for an unset secret, "[redacted]" only for a set one', () => {
      const unset = configErrorFrom({ MONGODB_URI: undefined });
      expect(unset.message).to.match(/MONGODB_URI \(mongodb\.uri\): is required.*value is not set/);
      expect(unset.message).not.to.contain('[redacted]');
      const sasl = configErrorFrom({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'relay' });
      expect(sasl.message).to.match(/KAFKA_SASL_PASSWORD.*not set/);
    });
  });
});
