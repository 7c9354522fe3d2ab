/**
 * Child process of test/integration/sink/fast-encoder-readback.test.ts: produces the messages of a
 * JSON file through kafkajs with the relay's fast produce encoder installed (as the relay installs it,
 * before kafkajs loads its produce requests: which a test process that already used kafkajs cannot
 * do), and prints how many produce requests the fast path encoded.
 *
 *   tsx test/support/fastProduceChild.ts <brokers> <topic> <messages.json>
 * The file: [{ partition, key, value, headers: [[name, value|null], …], timestamp? }] with key and
 * values as { hex } (bytes), strings, or null.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import {
  fastPathApplies,
  installFastProduceEncoder,
  type ProduceRequestArgs,
} from '../../src/sink/fastProduceEncoder.js';

export type WireBytes = { hex: string } | string | null;
export interface WireMessage {
  partition: number;
  key: WireBytes;
  value: WireBytes;
  headers: [string, WireBytes][];
  timestamp?: string;
}

const bytes = (b: WireBytes): Buffer | string | null =>
  b === null ? null : typeof b === 'string' ? b : Buffer.from(b.hex, 'hex');

async function main(): Promise<void> {
  const [brokers, topic, file] = process.argv.slice(2);
  if (!brokers || !topic || !file)
    throw new Error('usage: fastProduceChild <brokers> <topic> <messages.json>');
  if (!installFastProduceEncoder()) throw new Error('the fast produce encoder could not be installed');
  // Count the requests the fast path takes, by wrapping the factory the install put in place.
  const require = createRequire(import.meta.url);
  const requestPath = require.resolve('kafkajs/src/protocol/requests/produce/v3/request');
  const cached = require.cache[requestPath]!;
  const installed = cached.exports as (args: ProduceRequestArgs) => unknown;
  let fast = 0;
  let total = 0;
  cached.exports = (args: ProduceRequestArgs) => {
    total++;
    if (fastPathApplies(args)) fast++;
    return installed(args);
  };
  const messages = JSON.parse(readFileSync(file, 'utf8')) as WireMessage[];
  const kafka = new Kafka({
    clientId: 'fast-readback',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // Several sends of varying size: each is one produce request spanning many partitions.
  for (let i = 0; i < messages.length;) {
    const n = 1 + (i % 97);
    const chunk = messages.slice(i, i + n);
    i += n;
    await producer.send({
      topic,
      acks: -1,
      messages: chunk.map((m) => {
        const headers: Record<string, (Buffer | string)[]> = {};
        for (const [name, value] of m.headers) (headers[name] ??= []).push(bytes(value) ?? '');
        return {
          partition: m.partition,
          key: bytes(m.key),
          value: bytes(m.value),
          headers,
          ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
        };
      }),
    });
  }
  await producer.disconnect();
  process.stdout.write(`${JSON.stringify({ fast, total })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
