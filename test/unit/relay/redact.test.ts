import { expect } from 'chai';
import { Writable } from 'node:stream';
import { redactSecrets } from '../../../src/config/redact.js';
import { createLogger } from '../../../src/app/logger.js';

describe('secret redaction', () => {
  it('masks credentials and password options in connection strings', () => {
    expect(redactSecrets('connect mongodb://admin:s3cret@db1:27017,db2/?replicaSet=rs0&password=x')).to.equal(
      'connect mongodb://***:***@db1:27017,db2/?replicaSet=rs0&password=***',
    );
    expect(redactSecrets('mongodb+srv://u:p@cluster0.example.net/db')).to.equal(
      'mongodb+srv://***:***@cluster0.example.net/db',
    );
  });

  it('keeps secrets out of every log line: messages, errors and known fields', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger('info', sink);
    log.info('using mongodb://root:hunter2@h/');
    log.error({ err: new Error('failed mongodb://root:hunter2@h/') }, 'boom');
    log.info({ mongodb: { uri: 'mongodb://root:hunter2@h/' }, kafka: { saslPassword: 'hunter2' } }, 'config');
    expect(lines).to.have.length(3);
    for (const line of lines) expect(line).not.to.contain('hunter2');
  });
});
