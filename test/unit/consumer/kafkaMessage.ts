/** A KafkaMessage as kafkajs hands it to a consumer, built from text (unit tests of the decoder). */
import type { KafkaMessage } from 'kafkajs';

export function kafkaMessage(fields: {
  key?: string | null;
  value?: string | Buffer | null;
  headers?: Record<string, string>;
}): KafkaMessage {
  const headers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(fields.headers ?? {})) headers[name] = Buffer.from(value);
  return {
    key: fields.key === undefined || fields.key === null ? null : Buffer.from(fields.key),
    value: fields.value === undefined || fields.value === null ? null : Buffer.from(fields.value),
    headers,
    offset: '41',
    timestamp: '1700000000000',
    attributes: 0,
  };
}
