/**
 * Kafka's own parser as the oracle of the relay's fast produce encoder (src/sink/fastProduceEncoder.ts):
 * seeded random records (null and empty keys and values, binary and unicode bytes, values up to 64 KB,
 * repeated and unicode header names, explicit timestamps, 12 partitions, requests spanning many
 * partitions) are produced by kafkajs with the fast encoder installed, then read back from the broker
 * by the Java client of the broker's own classpath (CRC checked). Every record must come back in its
 * partition, in order, with the exact key, value, headers and timestamp; the unit test compares the
 * bytes with kafkajs's encoder, this one with what Kafka itself accepts and parses.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureKafkaJars } from '../../../scripts/services/kafka.js';
import { createTopic, kafkaClient, uniqueTopic } from '../../support/kafka.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';
import { getServices } from '../../support/services.js';
import type { WireBytes, WireMessage } from '../../support/fastProduceChild.js';

const execFileP = promisify(execFile);
const SEED = chooseSeed();
const PARTITIONS = 12;
const COUNT = 1500;
const SUPPORT = path.resolve(import.meta.dirname, '../../support');

interface ReadRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
}

function generate(seed: number): WireMessage[] {
  const rand = new SeededRandom(seed);
  const int = (n: number): number => Math.floor(rand.next() * n);
  const text = (n: number): string =>
    Array.from({ length: n }, () => ['a', 'é', '中', '🙂', '$', '.', ' ', '\u0000', 'z'][int(9)]).join('');
  const someBytes = (max: number): WireBytes => {
    switch (int(5)) {
      case 0:
        return null;
      case 1:
        return '';
      case 2:
        return text(int(max / 4));
      default:
        return { hex: Buffer.from(Array.from({ length: int(max) }, () => int(256))).toString('hex') };
    }
  };
  const base = 1_795_616_619_000;
  return Array.from({ length: COUNT }, (_, i) => {
    const headers: [string, WireBytes][] = [];
    for (let h = int(5); h > 0; h--) {
      const name = `h${h}-${text(int(4))}`;
      for (let v = 1 + int(2); v > 0; v--) headers.push([name, int(2) ? text(int(40)) : { hex: 'ff00fe' }]);
    }
    const size = int(10) === 0 ? 65_536 : 600;
    const partition = int(PARTITIONS);
    return {
      partition,
      key: int(8) === 0 ? null : someBytes(64),
      value: someBytes(size),
      headers,
      // The relay sends the event's cluster time as a string (KAFKA_RECORD_TIMESTAMP=event) or none;
      // a partition's batch carries one or the other (a mix is left to kafkajs: see the unit test).
      ...(partition % 2 === 0 ? { timestamp: String(base + i * 7 + int(5)) } : {}),
    };
  });
}

const asHex = (b: WireBytes): string | null =>
  b === null ? null : typeof b === 'string' ? Buffer.from(b, 'utf8').toString('hex') : b.hex;

describe(`fast produce encoder read back by Kafka's Java client (seed ${SEED}; TEST_SEED replays)`, function () {
  this.timeout(300_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fast-readback-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('every record comes back in its partition, in order, with its key, value, headers and timestamp', async () => {
    const { brokers } = getServices();
    const topic = uniqueTopic('fast-readback');
    await createTopic(kafkaClient('fast-readback'), topic, PARTITIONS);
    const sent = generate(SEED);
    const file = path.join(dir, 'messages.json');
    await writeFile(file, JSON.stringify(sent));

    const tsx = path.resolve('node_modules/.bin/tsx');
    const produced = await execFileP(tsx, [path.join(SUPPORT, 'fastProduceChild.ts'), brokers, topic, file], {
      maxBuffer: 1 << 20,
    });
    const { fast, total } = JSON.parse(produced.stdout.trim()) as { fast: number; total: number };
    expect(total, 'produce requests').to.be.greaterThan(10);
    expect(fast, 'requests the fast path encoded').to.equal(total);

    const libs = await ensureKafkaJars();
    const read = await execFileP(
      'java',
      [
        '-cp',
        `${libs}/*`,
        path.join(SUPPORT, 'java', 'ReadBack.java'),
        brokers,
        topic,
        String(COUNT),
        '120000',
      ],
      { maxBuffer: 256 << 20 },
    );
    const records = read.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ReadRecord);
    expect(records.length, 'records read back').to.equal(COUNT);

    for (let p = 0; p < PARTITIONS; p++) {
      const want = sent.filter((m) => m.partition === p);
      const got = records.filter((r) => r.partition === p).sort((a, b) => a.offset - b.offset);
      expect(got.length, `partition ${p}`).to.equal(want.length);
      want.forEach((m, i) => {
        const r = got[i]!;
        const where = `partition ${p}, record ${i} (offset ${r.offset})`;
        expect(r.key, `${where}: key`).to.equal(asHex(m.key));
        expect(r.value, `${where}: value`).to.equal(asHex(m.value));
        // kafkajs writes a header name's values together, in the order of the names' first use.
        const names = [...new Set(m.headers.map(([n]) => n))];
        const headers = names.flatMap((n) =>
          m.headers.filter(([name]) => name === n).map(([name, v]) => [asHex(name), asHex(v)]),
        );
        expect(r.headers, `${where}: headers`).to.deep.equal(headers);
        if (m.timestamp !== undefined)
          expect(r.timestamp, `${where}: timestamp`).to.equal(Number(m.timestamp));
      });
    }
  });
});
