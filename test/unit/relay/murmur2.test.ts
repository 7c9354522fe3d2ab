import { expect } from 'chai';
import { murmur2, partitionFor } from '../../../src/pipeline/murmur2.js';

describe('murmur2', () => {
  // The vectors of Kafka's own UtilsTest.testMurmur2: our partitions match the Java client's.
  const vectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [input, expected] of vectors) {
    it(`hashes "${input}" like the Java client`, () =>
      expect(murmur2(Buffer.from(input))).to.equal(expected));
  }

  it('maps a key to a partition within range, deterministically', () => {
    const key = Buffer.from('shop.orders\u0000{"_id":{"$oid":"64b7f0c2a1b2c3d4e5f60718"}}');
    const p = partitionFor(key, 6);
    expect(p).to.be.within(0, 5);
    expect(partitionFor(key, 6)).to.equal(p);
  });
});
