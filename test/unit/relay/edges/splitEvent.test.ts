import { expect } from 'chai';
import type { Document } from 'mongodb';
import { FragmentAssembler, FragmentSequenceError, splitInfo } from '../../../../src/source/splitEvent.js';

/** The fragments MongoDB returns for one event split in `of` parts (fields shared out, in order). */
function fragments(fieldsPerFragment: Document[]): Document[] {
  return fieldsPerFragment.map((fields, i) => ({
    _id: { _data: `82AA0001${String(i + 1).padStart(4, '0')}` },
    ...fields,
    splitEvent: { fragment: i + 1, of: fieldsPerFragment.length },
  }));
}

const EVENT_FIELDS = [
  { operationType: 'update', clusterTime: 't', ns: { db: 'd', coll: 'c' }, documentKey: { _id: 1 } },
  { updateDescription: { updatedFields: { big: 'x' } } },
  { fullDocument: { _id: 1, big: 'x' } },
];

function feed(assembler: FragmentAssembler, docs: Document[]) {
  const out = [];
  for (const d of docs) {
    const whole = assembler.add(d, splitInfo(d)!);
    out.push(whole);
  }
  return out;
}

describe('split event reassembly', () => {
  it('returns nothing until the last fragment, then the whole event with every field', () => {
    const assembler = new FragmentAssembler();
    const results = feed(assembler, fragments(EVENT_FIELDS));
    expect(results.slice(0, 2)).to.deep.equal([null, null]);
    const whole = results[2]!;
    expect(whole.event).to.deep.equal({
      _id: { _data: '82AA00010003' },
      ...EVENT_FIELDS[0],
      ...EVENT_FIELDS[1],
      ...EVENT_FIELDS[2],
    });
    expect(whole.event).to.not.have.property('splitEvent');
    expect(assembler.assembling).to.equal(false);
  });

  it("gives the whole event the LAST fragment's token: the position after the event, never one inside it", () => {
    const assembler = new FragmentAssembler();
    const docs = fragments(EVENT_FIELDS);
    feed(assembler, docs.slice(0, 2));
    expect(assembler.assembling, 'inside the event: no position may be taken').to.equal(true);
    const whole = assembler.add(docs[2]!, splitInfo(docs[2]!)!);
    expect(whole!.token).to.deep.equal(docs[2]!._id);
  });

  it('refuses a gap or a fragment of another sequence', () => {
    const docs = fragments(EVENT_FIELDS);
    const a = new FragmentAssembler();
    expect(() => a.add(docs[1]!, splitInfo(docs[1]!)!)).to.throw(
      FragmentSequenceError,
      'expected fragment 1',
    );
    const b = new FragmentAssembler();
    b.add(docs[0]!, splitInfo(docs[0]!)!);
    expect(() => b.add(docs[2]!, splitInfo(docs[2]!)!)).to.throw(FragmentSequenceError);
    const c = new FragmentAssembler();
    c.add(docs[0]!, { fragment: 1, of: 3 });
    expect(() => c.add(docs[1]!, { fragment: 2, of: 4 })).to.throw(FragmentSequenceError);
  });

  it('reads splitEvent, and treats events without it as whole', () => {
    expect(splitInfo({ _id: 1, operationType: 'insert' })).to.equal(null);
    expect(splitInfo({ splitEvent: { fragment: 2, of: 3 } })).to.deep.equal({ fragment: 2, of: 3 });
    expect(() => splitInfo({ splitEvent: { fragment: 4, of: 3 } })).to.throw(FragmentSequenceError);
  });

  it('starts over cleanly after reset (the stream reopened from the last whole event)', () => {
    const assembler = new FragmentAssembler();
    const docs = fragments(EVENT_FIELDS);
    feed(assembler, docs.slice(0, 2));
    assembler.reset();
    expect(feed(assembler, docs)[2]!.token).to.deep.equal(docs[2]!._id);
  });
});
