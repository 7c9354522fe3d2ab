import { expect } from 'chai';
import type { EachBatchPayload, Offsets } from 'kafkajs';

import type { ConsumerLogger } from '../../../src/consumer/logging.js';
import { OffsetCommitter, nextOffset } from '../../../src/consumer/offsetCommitter.js';

const silent: ConsumerLogger = { debug() {}, info() {}, warn() {}, error() {} };

function payload(fail?: { type: string }) {
  const commits: string[] = [];
  const value = {
    commitOffsetsIfNecessary: async (offsets?: Offsets) => {
      if (fail) throw Object.assign(new Error(fail.type), fail);
      const p = offsets?.topics[0]?.partitions[0];
      commits.push(`${offsets?.topics[0]?.topic}/${p?.partition}@${p?.offset}`);
    },
  } as unknown as EachBatchPayload;
  return { value, commits };
}

describe('consumer/offsetCommitter', () => {
  it('nextOffset adds one without losing 64-bit precision', () => {
    expect(nextOffset('41')).to.equal('42');
    expect(nextOffset('9007199254740993')).to.equal('9007199254740994');
  });

  it('is due after everyRecords records or intervalMs, whichever comes first', () => {
    let now = 1_000;
    const committer = new OffsetCommitter({ everyRecords: 100, intervalMs: 5_000 }, silent, () => now);
    expect(committer.isDue('t', 0)).to.equal(false);
    committer.advance('t', 0, '50', 50);
    expect(committer.isDue('t', 0)).to.equal(false);
    committer.advance('t', 0, '100', 50);
    expect(committer.isDue('t', 0), 'by count').to.equal(true);

    committer.advance('t', 1, '10', 10);
    now += 4_999;
    expect(committer.isDue('t', 1)).to.equal(false);
    now += 1;
    expect(committer.isDue('t', 1), 'by time, from the oldest uncommitted record').to.equal(true);
  });

  it('commits the newest offset of the partition once, then has nothing to commit', async () => {
    const committer = new OffsetCommitter({ everyRecords: 1_000, intervalMs: 5_000 }, silent);
    committer.advance('t', 2, '11', 10);
    committer.advance('t', 2, '21', 10);
    const { value, commits } = payload();
    expect(await committer.commit(value, 't', 2)).to.equal('committed');
    expect(await committer.commit(value, 't', 2)).to.equal('nothing');
    expect(commits).to.deep.equal(['t/2@21']);
    expect(committer.pendingOffset('t', 2)).to.equal(undefined);
  });

  it('keeps the offset after a failed commit, and drops it after a rebalance error (the partition may be gone)', async () => {
    const committer = new OffsetCommitter({ everyRecords: 1_000, intervalMs: 5_000 }, silent);
    committer.advance('t', 0, '5', 5);
    expect(await committer.commit(payload({ type: 'REQUEST_TIMED_OUT' }).value, 't', 0)).to.equal('failed');
    expect(committer.pendingOffset('t', 0)).to.equal('5');
    expect(await committer.commit(payload({ type: 'REBALANCE_IN_PROGRESS' }).value, 't', 0)).to.equal(
      'revoked',
    );
    expect(committer.pendingOffset('t', 0)).to.equal(undefined);
  });

  it('forgets a revoked partition', () => {
    const committer = new OffsetCommitter({ everyRecords: 1, intervalMs: 0 }, silent);
    committer.advance('t', 0, '5', 5);
    committer.forget('t', 0);
    expect(committer.isDue('t', 0)).to.equal(false);
  });
});
