/**
 * Kafka TLS beyond on/off: the CA to trust, a client certificate and key (mutual TLS) and the server
 * name to verify, turned into the `tls.connect` options kafkajs passes through. The files are read
 * each time a client is created, so certificates rotated in a mounted Secret are picked up when the
 * relay reconnects or restarts. MongoDB TLS needs nothing here: the driver reads tlsCAFile and
 * tlsCertificateKeyFile from the connection string.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

export interface KafkaTlsSettings {
  ssl: boolean;
  sslCaFile: string;
  sslCertFile: string;
  sslKeyFile: string;
  sslKeyPassword: string;
  sslServername: string;
}

/**
 * Combinations that cannot work, each attributed to the setting to change (configuration errors,
 * exit 3; the loader reports them with every other problem).
 */
export function kafkaTlsProblems(k: KafkaTlsSettings): { key: string; message: string }[] {
  const problems: { key: string; message: string }[] = [];
  const set = (
    [
      ['KAFKA_SSL_CA_FILE', k.sslCaFile],
      ['KAFKA_SSL_CERT_FILE', k.sslCertFile],
      ['KAFKA_SSL_KEY_FILE', k.sslKeyFile],
      ['KAFKA_SSL_KEY_PASSWORD', k.sslKeyPassword],
      ['KAFKA_SSL_SERVERNAME', k.sslServername],
    ] as const
  ).filter(([, value]) => value !== '');
  if (!k.ssl && set.length > 0) {
    problems.push({
      key: 'kafka.ssl',
      message: `must be true when ${set.map(([name]) => name).join(', ')} ${set.length > 1 ? 'are' : 'is'} set`,
    });
  }
  if ((k.sslCertFile === '') !== (k.sslKeyFile === '')) {
    const [missing, other] =
      k.sslCertFile === ''
        ? ['kafka.sslCertFile', 'KAFKA_SSL_KEY_FILE']
        : ['kafka.sslKeyFile', 'KAFKA_SSL_CERT_FILE'];
    problems.push({
      key: missing,
      message: `must be set together with ${other} for mutual TLS (a client certificate needs its key), or both be empty`,
    });
  }
  return problems;
}

/** kafkajs' `ssl` option: false, true (system CAs), or tls.connect options. */
export function kafkaTlsOptions(k: KafkaTlsSettings): boolean | ConnectionOptions {
  if (!k.ssl) return false;
  const options: ConnectionOptions = {};
  if (k.sslCaFile !== '') options.ca = readFileSync(k.sslCaFile);
  if (k.sslCertFile !== '') options.cert = readFileSync(k.sslCertFile);
  if (k.sslKeyFile !== '') options.key = readFileSync(k.sslKeyFile);
  if (k.sslKeyPassword !== '') options.passphrase = k.sslKeyPassword;
  if (k.sslServername !== '') options.servername = k.sslServername;
  return Object.keys(options).length > 0 ? options : true;
}
