import { expect } from 'chai';
import { Timestamp } from 'mongodb';
import {
  PositionRecordError,
  PositionTracker,
  decodePosition,
  encodePosition,
  type CommittedPosition,
} from '../../../src/sink/positions.js';
import { resumeCheckpoint } from '../../../src/app/committedPosition.js';
import type { CheckpointDoc } from '../../../src/checkpoint/checkpointStore.js';
import type { StoredSnapshot } from '../../../src/snapshot/snapshotPlan.js';

const at = (t: number) => new Timestamp({ t, i: 1 });
const stream = (data: string, t: number) => ({ token: { _data: data }, clusterTime: at(t) });
const snap = (index: number, copied: number) => ({
  token: { _data: 'stand-in' },
  clusterTime: null,
  snapshot: { index, copied, lastIdJson: `{"$numberInt":"${copied}"}` },
});

describe('exactly-once positions (positions.ts)', () => {
  describe('the position record', () => {
    it('round-trips token, cluster time, snapshot progress and the transaction that wrote it', () => {
      const p: CommittedPosition = {
        token: { _data: '82AB' },
        clusterTime: at(17),
        snapshot: {
          planId: '17.1-1',
          cursor: { index: 1, copied: 9, lastIdJson: '"x"' },
          streamStarted: false,
        },
        transaction: { owner: 'host:1:abc', seq: 42 },
      };
      const text = encodePosition('cp', p, new Date('2026-12-06T00:00:00Z'));
      expect(JSON.parse(text)).to.include({ v: 1, checkpointId: 'cp', token: '82AB' });
      const back = decodePosition(text);
      expect(back.token).to.deep.equal({ _data: '82AB' });
      expect(back.clusterTime?.equals(at(17))).to.equal(true);
      expect(back.snapshot).to.deep.equal(p.snapshot);
      expect(back.transaction).to.deep.equal(p.transaction);
    });

    it('refuses what it cannot read, naming why', () => {
      expect(() => decodePosition('not json')).to.throw(PositionRecordError, /not JSON/);
      expect(() => decodePosition('{"v":2}')).to.throw(PositionRecordError, /version 2/);
      expect(() => decodePosition('{"v":1,"token":5}')).to.throw(PositionRecordError, /token/);
      expect(() => decodePosition('{"v":1,"token":null,"clusterTime":null}')).to.throw(/transaction/);
    });
  });

  describe('PositionTracker', () => {
    it('commits the position of the last record taken; an abort falls back to the committed one', () => {
      const t = new PositionTracker(stream('A', 1));
      t.take(stream('B', 2));
      t.take(stream('C', 3));
      expect(t.next('o', 1).token).to.deep.equal({ _data: 'C' });
      t.commit();
      t.take(stream('D', 4));
      t.abort();
      expect(t.next('o', 2).token, 'aborted records are taken again later').to.deep.equal({ _data: 'C' });
    });

    it('keeps the stream token while snapshot items commit, and marks the snapshot complete at the first stream position after them', () => {
      const t = new PositionTracker(stream('S', 5));
      t.beginSnapshot('5.1-1');
      t.take(snap(0, 1));
      t.take(snap(0, 2));
      const during = t.next('o', 1);
      expect(during.token).to.deep.equal({ _data: 'S' });
      expect(during.snapshot).to.deep.include({ planId: '5.1-1', streamStarted: false });
      expect(during.snapshot?.cursor?.copied).to.equal(2);
      t.commit();
      t.take(stream('T', 6));
      const after = t.next('o', 2);
      expect(after.token).to.deep.equal({ _data: 'T' });
      expect(after.snapshot).to.deep.include({ planId: '5.1-1', streamStarted: true });
    });

    it('refuses a snapshot item outside a snapshot (a bug, never a silent position)', () => {
      expect(() => new PositionTracker(stream('A', 1)).take(snap(0, 1))).to.throw(/bug/);
    });

    it('an offered idle position is committed on its own and forgotten on abort', () => {
      const t = new PositionTracker(stream('A', 1));
      expect(t.hasOffer).to.equal(false);
      t.offer(stream('B', 2));
      expect(t.hasOffer).to.equal(true);
      expect(t.next('o', 1).token).to.deep.equal({ _data: 'B' });
      t.abort();
      expect(t.hasOffer).to.equal(false);
      expect(t.next('o', 2).token).to.deep.equal({ _data: 'A' });
    });
  });
});

describe('exactly-once resume (committedPosition.ts)', () => {
  const doc = (fields: Partial<CheckpointDoc> = {}): CheckpointDoc => ({
    _id: 'cp',
    token: { _data: 'MIRROR' },
    clusterTime: at(1),
    counts: { published: 3, filtered: 0, deadLettered: 0 },
    writtenAt: new Date(),
    fingerprint: 'f',
    watch: ['a.b'],
    ...fields,
  });
  const committed = (fields: Partial<CommittedPosition> = {}): CommittedPosition => ({
    token: { _data: 'KAFKA' },
    clusterTime: at(2),
    snapshot: null,
    transaction: { owner: 'o', seq: 1 },
    ...fields,
  });

  it('without a committed position, the MongoDB checkpoint as it is', () => {
    const cp = doc();
    expect(resumeCheckpoint('cp', cp, null)).to.deep.equal({
      checkpoint: cp,
      from: 'checkpoint (no committed position)',
    });
  });

  it('the committed position wins over the mirror (which may trail it), keeping the identity fields', () => {
    const { checkpoint, from } = resumeCheckpoint('cp', doc(), committed());
    expect(from).to.equal('positions topic');
    expect(checkpoint?.token).to.deep.equal({ _data: 'KAFKA' });
    expect(checkpoint?.clusterTime?.equals(at(2))).to.equal(true);
    expect(checkpoint?.fingerprint).to.equal('f');
  });

  it("an operator's token set (setBy) wins over the committed position", () => {
    const cp = doc({ setBy: 'alice@host' });
    expect(resumeCheckpoint('cp', cp, committed()).checkpoint?.token).to.deep.equal({ _data: 'MIRROR' });
  });

  it('a missing MongoDB checkpoint resumes from the committed position', () => {
    const { checkpoint } = resumeCheckpoint('cp', null, committed());
    expect(checkpoint?._id).to.equal('cp');
    expect(checkpoint?.token).to.deep.equal({ _data: 'KAFKA' });
  });

  it("takes the current snapshot's progress from the committed position, and its completion", () => {
    const stored = {
      id: 'P1',
      number: 1,
      reason: 'initial',
      clusterTime: at(1),
      collections: [],
      cursor: { index: 0, copied: 1 },
      state: 'running',
      startedAt: new Date(),
    } as StoredSnapshot;
    const cursor = { index: 0, copied: 7, lastIdJson: '7' };
    const running = resumeCheckpoint(
      'cp',
      doc({ snapshot: stored }),
      committed({ snapshot: { planId: 'P1', cursor, streamStarted: false } }),
    );
    expect(running.checkpoint?.snapshot).to.deep.include({ state: 'running', cursor });
    const done = resumeCheckpoint(
      'cp',
      doc({ snapshot: stored }),
      committed({ snapshot: { planId: 'P1', cursor, streamStarted: true } }),
    );
    expect(done.checkpoint?.snapshot?.state).to.equal('done');
    const other = resumeCheckpoint(
      'cp',
      doc({ snapshot: stored }),
      committed({ snapshot: { planId: 'P0', cursor, streamStarted: true } }),
    );
    expect(other.checkpoint?.snapshot, "another plan's progress is not applied").to.deep.equal(stored);
  });
});
