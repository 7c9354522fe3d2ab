/**
 * Reads a topic with kcat (librdkafka: a Kafka client this project did not write and that shares no code
 * with kafkajs or the Java client). Keys and values are framed by their lengths, so they come back byte
 * for byte; headers come from kcat's `%h` text form ("name=value" joined by commas), which cannot carry
 * a comma, an equals sign, a newline or a NUL byte, nor tell a null value from an empty one.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { ReadRecord } from './workload.js';

const execFileP = promisify(execFile);

export interface KcatRecord {
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** kcat's `%h` text: "" when the record has no headers. */
  readonly headers: string;
}

/** The kcat binary's version line, or null when kcat is not installed. */
export function kcatVersion(): string | null {
  try {
    return (
      execFileSync('kcat', ['-V'], { encoding: 'utf8' })
        .split('\n')
        .find((l) => /^Version/.test(l)) ?? ''
    );
  } catch {
    return null;
  }
}

// One record: "<partition> <offset> <timestamp> <keyLength> <valueLength>\n<key><value>\n<headers>\n".
const FORMAT = '%p %o %T %K %S\\n%k%s\\n%h\\n';

/** Every record of `topic` from the beginning to its end at the time of the call (kcat -e). */
export async function readTopicWithKcat(
  brokers: string,
  topic: string,
  timeoutMs: number,
  /** Extra librdkafka properties, e.g. `{ 'isolation.level': 'read_committed' }`. */
  properties: Record<string, string> = {},
): Promise<KcatRecord[]> {
  const extra = Object.entries(properties).flatMap(([k, v]) => ['-X', `${k}=${v}`]);
  const { stdout } = await execFileP(
    'kcat',
    ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', FORMAT, ...extra],
    { encoding: 'buffer', maxBuffer: 512 << 20, timeout: timeoutMs },
  );
  return parse(stdout);
}

function parse(out: Buffer): KcatRecord[] {
  const records: KcatRecord[] = [];
  let at = 0;
  const line = (): string => {
    const end = out.indexOf(0x0a, at);
    if (end < 0) throw new Error(`kcat output ends inside a record at byte ${at}`);
    const text = out.subarray(at, end).toString('utf8');
    at = end + 1;
    return text;
  };
  const bytes = (length: number): Buffer | null => {
    if (length < 0) return null;
    const b = out.subarray(at, at + length);
    at += length;
    return Buffer.from(b);
  };
  while (at < out.length) {
    const [partition, offset, timestamp, keyLength, valueLength] = line().split(' ').map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const key = bytes(keyLength);
    const value = bytes(valueLength);
    if (out[at] !== 0x0a) throw new Error(`kcat output: no newline after the record at offset ${offset}`);
    at++;
    records.push({ partition, offset, timestamp, key, value, headers: line() });
  }
  return records;
}

/**
 * kcat is the independent reader of a test: required under CI (.ci/run installs it), elsewhere the
 * test is skipped and says why.
 */
export function requireKcat(test: Mocha.Context): void {
  if (kcatVersion() !== null) return;
  if (process.env.CI) throw new Error('kcat is not installed (.ci/run installs it with apt-get)');
  console.log('    (skipped: kcat, the independent reader, is not installed; apt-get install kcat)');
  test.skip(); // reason: kcat is not installed (printed above); install it with apt-get install kcat
}

/** Every record of `topic` as kcat reads it, as text (the shape the delivery checks compare). */
export async function readTopicRecords(
  brokers: string,
  topic: string,
  properties: Record<string, string> = {},
): Promise<ReadRecord[]> {
  const records = await readTopicWithKcat(brokers, topic, 120_000, properties);
  return records.map((r) => ({
    topic,
    partition: r.partition,
    offset: String(r.offset),
    key: r.key?.toString('utf8') ?? null,
    value: r.value?.toString('utf8') ?? null,
  }));
}

export const READ_COMMITTED = { 'isolation.level': 'read_committed' };
