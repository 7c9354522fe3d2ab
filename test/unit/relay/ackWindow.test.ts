import { expect } from 'chai';
import { AckWindow } from '../../../src/pipeline/ackWindow.js';

const pos = (n: number) => ({ token: { _data: `82${String(n).padStart(16, '0')}` }, clusterTime: null });

describe('AckWindow', () => {
  it('releases nothing while the oldest item is unacknowledged, even if later ones are', () => {
    const w = new AckWindow();
    const a = w.admit(pos(1));
    const b = w.admit(pos(2));
    w.done(b, 'published');
    expect(w.release()).to.equal(null);
    expect(w.inFlight).to.equal(1);
    w.done(a, 'published');
    expect(w.release()).to.deep.include({ position: pos(2), published: 2, filtered: 0, deadLettered: 0 });
    expect(w.inFlight).to.equal(0);
  });

  it('releases filtered items and ticks only behind every earlier event', () => {
    const w = new AckWindow();
    const a = w.admit(pos(1));
    w.admitDone(pos(2), 'filtered');
    w.admitDone(pos(3), 'tick');
    expect(w.release()).to.equal(null);
    w.done(a, 'dead-lettered');
    expect(w.release()).to.deep.include({ position: pos(3), published: 0, filtered: 1, deadLettered: 1 });
  });

  it('refuses a second acknowledgement of one item', () => {
    const w = new AckWindow();
    const a = w.admit(pos(1));
    w.done(a, 'published');
    expect(() => w.done(a, 'published')).to.throw('twice');
  });

  it('stays correct across compaction of many released items', () => {
    const w = new AckWindow();
    let last = null;
    for (let i = 0; i < 5000; i++) {
      const slot = w.admit(pos(i));
      w.done(slot, 'published');
      last = w.release();
    }
    expect(last).to.deep.include({ position: pos(4999), published: 1 });
  });
});
