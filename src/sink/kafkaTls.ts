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

/** Combinations that cannot work; the message names the variables (a configuration error, exit 3). */
export function checkKafkaTls(k: KafkaTlsSettings): void {
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
    throw new Error(
      `KAFKA_SSL (kafka.ssl): must be true when ${set.map(([name]) => name).join(', ')} ${set.length > 1 ? 'are' : 'is'} set: value was false`,
    );
  }
  if ((k.sslCertFile === '') !== (k.sslKeyFile === '')) {
    throw new Error(
      'KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE: must both be set for mutual TLS (a client certificate needs its key), or both be empty',
    );
  }
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
