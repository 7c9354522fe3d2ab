import { expect } from 'chai';
import { parseResumeToken, clusterTimeOfToken } from '../../../src/source/resumeToken.js';

describe('resume tokens', () => {
  const hex = '8265F1A2B3000000012B022C0100296E5A1004';

  it('accepts the bare hex string and the {"_data": ...} form alike', () => {
    expect(parseResumeToken(hex)).to.deep.equal({ _data: hex });
    expect(parseResumeToken(` {"_data":"${hex.toLowerCase()}"} `)).to.deep.equal({ _data: hex });
  });

  for (const bad of [
    '',
    'xyz',
    '82ABC',
    '{"_data": 5}',
    '{"_data":"82AB","x":1}',
    '{not json',
    '82G5F1A2B300000001',
  ]) {
    it(`rejects ${JSON.stringify(bad)} with a message saying what a token looks like`, () => {
      expect(() => parseResumeToken(bad)).to.throw(/resume token|_data|JSON/);
    });
  }

  it('reads the cluster time from a KeyString token', () => {
    const ts = clusterTimeOfToken({ _data: hex });
    expect(ts?.high).to.equal(0x65f1a2b3);
    expect(ts?.low).to.equal(1);
    expect(clusterTimeOfToken({ _data: '0102030405060708090A' })).to.equal(null);
  });
});
