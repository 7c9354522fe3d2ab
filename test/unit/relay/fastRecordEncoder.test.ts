import { expect } from 'chai';
import { createRequire } from 'node:module';
import { encodeRecord, type RecordInput } from '../../../src/sink/fastRecordEncoder.js';

const require = createRequire(import.meta.url);
/** kafkajs's own record encoder: the reference the fast one must match byte for byte. */
const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (input: RecordInput) => {
  buffer: Buffer;
};
const EncoderPrototype = (require('kafkajs/src/protocol/encoder') as { prototype: object }).prototype;

const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encodedBy = (encoder: (i: RecordInput) => { buffer: Buffer }, input: RecordInput): string =>
  encoder(input).buffer.toString('hex');
const fast = (input: RecordInput) => encodeRecord(input, EncoderPrototype) as unknown as { buffer: Buffer };

describe('fastRecordEncoder', () => {
  it('encodes the relay record shape exactly as kafkajs does', () => {
    const input: RecordInput = {
      offsetDelta: 17,
      timestampDelta: 3,
      key: '826B06EF6B0000000180',
      value: Buffer.from('{"_id":{"_data":"826B06EF6B0000000180"},"operationType":"insert"}'),
      headers: {
        'change-id': '826B06EF6B0000000180',
        'operation-type': 'insert',
        'content-type': 'application/vnd.mongodb.change-event+json; format=relaxed',
        ns: 'shop.orders',
        'document-key': '{"_id":{"$oid":"6b06ef6b467f7699a988cd73"}}',
        'cluster-time': '1795616619.1',
      },
    };
    expect(encodedBy(fast, input)).to.equal(encodedBy(kafkajsRecord, input));
  });

  it(`matches kafkajs on random records (seed ${SEED}; TEST_SEED replays)`, () => {
    const rand = random(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const text = (n: number) =>
      Array.from({ length: int(n) }, () =>
        rand() < 0.1 ? String.fromCodePoint(0x80 + int(0x10000 - 0x80)) : String.fromCharCode(32 + int(90)),
      ).join('');
    const bytes = (nullable: boolean) => {
      const r = rand();
      if (nullable && r < 0.1) return null;
      const s = text(r < 0.2 ? 20_000 : 300);
      return rand() < 0.5 ? s : Buffer.from(s);
    };
    for (let i = 0; i < 500; i++) {
      // kafkajs refuses null header values (Buffer.byteLength(null) throws); keys and values may be null.
      const headers: Record<string, string | Buffer | (string | Buffer)[]> = {};
      for (let h = int(8); h > 0; h--)
        headers[text(12) || `h${h}`] = rand() < 0.2 ? [bytes(false)!, bytes(false)!] : bytes(false)!;
      const input: RecordInput = {
        offsetDelta: rand() < 0.5 ? int(200) : int(2_000_000),
        timestampDelta: rand() < 0.8 ? int(1000) : -int(2 ** 40),
        key: bytes(true),
        value: bytes(true),
        headers,
      };
      expect(encodedBy(fast, input), `record ${i}`).to.equal(encodedBy(kafkajsRecord, input));
    }
  });
});
