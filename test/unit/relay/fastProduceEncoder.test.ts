import { expect } from 'chai';
import { createRequire } from 'node:module';
import {
  crc32c,
  encodeProduceRequest,
  fastPathApplies,
  type ProduceMessage,
  type ProduceRequestArgs,
} from '../../../src/sink/fastProduceEncoder.js';
import { SeededRandom, chooseSeed } from '../../support/random.js';

const require = createRequire(import.meta.url);
/** kafkajs's own encoders: the reference the fast ones must match byte for byte. */
const kafkajsRequest = require('kafkajs/src/protocol/requests/produce/v3/request') as (
  a: ProduceRequestArgs,
) => {
  encode: () => Promise<{ buffer: Buffer }>;
};
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
const Long = require('kafkajs/src/utils/long') as { fromValue: (v: unknown) => unknown };

const SEED = chooseSeed();

/** A replayable [0, 1) generator (test/support/random.ts). */
function random(seed: number): () => number {
  const generator = new SeededRandom(seed);
  return () => generator.next();
}

/** kafkajs's encoding with its clock frozen at `now` (it stamps each batch with Date.now()). */
async function kafkajsBytes(args: ProduceRequestArgs, now: number): Promise<string> {
  const realNow = Date.now;
  Date.now = () => now;
  try {
    return (await kafkajsRequest(args).encode()).buffer.toString('hex');
  } finally {
    Date.now = realNow;
  }
}

const relayMessage = (i: number, value: Buffer | string): ProduceMessage => ({
  key: `826B06EF6B${String(i).padStart(10, '0')}`,
  value,
  partition: i % 3,
  headers: {
    'change-id': `826B06EF6B${String(i).padStart(10, '0')}`,
    'operation-type': 'insert',
    'content-type': 'application/vnd.mongodb.change-event+json; format=relaxed',
    ns: 'shop.orders',
    'document-key': `{"_id":{"$oid":"6b06ef6b467f7699a988cd${String(i % 100).padStart(2, '0')}"}}`,
    'cluster-time': `1795616619.${i}`,
  },
});

describe('fastProduceEncoder', () => {
  it('computes CRC-32C as kafkajs does, at every length and offset', () => {
    const rand = random(SEED);
    for (let n = 0; n < 200; n++) {
      const buf = Buffer.from(
        Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)),
      );
      const start = Math.floor(rand() * Math.min(9, buf.length + 1));
      expect(crc32c(buf, start), `length ${buf.length} from ${start}`).to.equal(
        kafkajsCrc32c(buf.subarray(start)),
      );
    }
  });

  it('encodes the relay request (idempotent producer, several partitions and topics) as kafkajs does', async () => {
    const args: ProduceRequestArgs = {
      acks: -1,
      timeout: 30000,
      transactionalId: null,
      producerId: Long.fromValue(4711),
      producerEpoch: 3,
      topicData: [
        {
          topic: 'mongo.shop.orders',
          partitions: [0, 1, 2].map((p) => ({
            partition: p,
            firstSequence: 100 * p,
            messages: Array.from({ length: 50 }, (_, i) => relayMessage(i, Buffer.from(`{"v":${i}}`))),
          })),
        },
        {
          topic: 'mongo.shop.items',
          partitions: [{ partition: 5, messages: [relayMessage(1, 'ü'.repeat(5000))] }],
        },
      ],
    };
    expect(fastPathApplies(args)).to.equal(true);
    const now = 1_795_616_619_123;
    expect(encodeProduceRequest(args, now).toString('hex')).to.equal(await kafkajsBytes(args, now));
  });

  it(`matches kafkajs on random requests (seed ${SEED}; TEST_SEED replays)`, async () => {
    const rand = random(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const text = (n: number) =>
      Array.from({ length: int(n) }, () =>
        rand() < 0.1 ? String.fromCodePoint(0x80 + int(0xd000)) : String.fromCharCode(32 + int(90)),
      ).join('');
    const bytes = (nullable: boolean) => {
      if (nullable && rand() < 0.1) return rand() < 0.5 ? null : undefined;
      const s = text(rand() < 0.02 ? 20_000 : 200);
      return rand() < 0.5 ? s : Buffer.from(s);
    };
    for (let r = 0; r < 25; r++) {
      const args: ProduceRequestArgs = {
        acks: [-1, 1, 0][int(3)]!,
        timeout: int(60_000),
        transactionalId: rand() < 0.2 ? text(20) || 'tx' : null,
        producerId: rand() < 0.5 ? Long.fromValue(int(2 ** 40)) : -1,
        producerEpoch: int(100),
        topicData: Array.from({ length: 1 + int(3) }, (_, t) => ({
          topic: `topic-${t}-${text(10)}`,
          partitions: Array.from({ length: 1 + int(4) }, (_, p) => ({
            partition: p * 2,
            firstSequence: rand() < 0.3 ? undefined : int(2 ** 31),
            messages: Array.from({ length: 1 + int(rand() < 0.1 ? 100 : 20) }, () => {
              // kafkajs refuses null header values; keys and values may be null.
              const headers: Record<string, string | Buffer | (string | Buffer)[]> = {};
              for (let h = int(8); h > 0; h--)
                headers[text(12) || `h${h}`] = rand() < 0.2 ? [bytes(false)!, bytes(false)!] : bytes(false)!;
              return { key: bytes(true), value: bytes(true), headers };
            }),
          })),
        })),
      };
      expect(fastPathApplies(args), `request ${r}`).to.equal(true);
      const now = 1_700_000_000_000 + int(10 ** 9);
      expect(encodeProduceRequest(args, now).toString('hex'), `request ${r}`).to.equal(
        await kafkajsBytes(args, now),
      );
    }
  });

  it(`encodes message timestamps (KAFKA_RECORD_TIMESTAMP=event) as kafkajs does (seed ${SEED})`, async () => {
    const rand = random(SEED + 1);
    const base = 1_795_616_619_000;
    const stamped = (i: number): ProduceMessage => ({
      ...relayMessage(i, `{"v":${i}}`),
      // Out of order on purpose, with gaps from 0 ms to days: deltas of every varlong size.
      timestamp: String(base + Math.floor(rand() ** 4 * 5 * 86_400_000)),
    });
    const args: ProduceRequestArgs = {
      acks: -1,
      timeout: 30000,
      producerId: Long.fromValue(4711),
      producerEpoch: 1,
      topicData: [
        {
          topic: 'mongo.shop.orders',
          partitions: [
            { partition: 0, messages: Array.from({ length: 200 }, (_, i) => stamped(i)) },
            { partition: 1, messages: [stamped(1)] },
            { partition: 2, messages: [relayMessage(2, 'unstamped')] },
          ],
        },
      ],
    };
    expect(fastPathApplies(args)).to.equal(true);
    const now = 1_795_616_619_123;
    expect(encodeProduceRequest(args, now).toString('hex')).to.equal(await kafkajsBytes(args, now));
  });

  it('encodes a state topic’s delete and its tombstone (document key, null value) as kafkajs does', async () => {
    // RELAY_KEY=document: the key is the document's identity; a tombstone has a null value (length -1,
    // not an empty value) and the delete's headers.
    const deleteAndTombstone = (i: number, stamp: string): ProduceMessage[] => {
      const del = {
        ...relayMessage(i, `{"operationType":"delete","n":${i}}`),
        key: `shop.orders\u0000{"_id":{"$oid":"6b06ef6b467f7699a988cd${String(i).padStart(2, '0')}"}}`,
        timestamp: stamp,
      };
      return [del, { ...del, value: null }];
    };
    const args: ProduceRequestArgs = {
      acks: -1,
      timeout: 30000,
      producerId: Long.fromValue(4711),
      producerEpoch: 2,
      topicData: [
        {
          topic: 'mongo.shop.orders',
          partitions: [
            {
              partition: 0,
              firstSequence: 7,
              messages: [
                ...deleteAndTombstone(1, '1795616619001'),
                ...deleteAndTombstone(2, '1795616619002'),
              ],
            },
            { partition: 1, messages: deleteAndTombstone(3, '1795616619003').slice(1) },
          ],
        },
      ],
    };
    expect(fastPathApplies(args)).to.equal(true);
    const now = 1_795_616_619_123;
    const fast = encodeProduceRequest(args, now);
    expect(fast.toString('hex')).to.equal(await kafkajsBytes(args, now));
    // ...and the null really is a null: an empty value would encode differently.
    const empty = structuredClone(args);
    empty.topicData[0]!.partitions[1]!.messages[0]!.value = '';
    expect(encodeProduceRequest(empty, now).toString('hex')).to.not.equal(fast.toString('hex'));
  });

  it('leaves compressed requests and unusual timestamps to kafkajs', () => {
    const messages = [relayMessage(1, 'x')];
    const base = {
      acks: -1,
      timeout: 1000,
      topicData: [{ topic: 't', partitions: [{ partition: 0, messages }] }],
    };
    expect(fastPathApplies({ ...base, compression: 1 })).to.equal(false);
    const unusual: ProduceMessage[][] = [
      [{ ...relayMessage(1, 'x'), timestamp: '1700000000000' }, relayMessage(2, 'x')], // mixed
      [
        { ...relayMessage(1, 'x'), timestamp: '999999999999' },
        { ...relayMessage(2, 'x'), timestamp: '1000000000000' }, // string order is not number order
      ],
      [{ ...relayMessage(1, 'x'), timestamp: 1700000000000 }], // a number
    ];
    for (const messages of unusual)
      expect(
        fastPathApplies({ ...base, topicData: [{ topic: 't', partitions: [{ partition: 0, messages }] }] }),
      ).to.equal(false);
  });
});
