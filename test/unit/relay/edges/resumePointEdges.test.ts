import { expect } from 'chai';
import { BSON } from 'mongodb';
import { loadConfig } from '../../../../src/config/load.js';
import { checkWatchFingerprint, resumePoint } from '../../../../src/app/resumePoint.js';
import { WatchMismatchError } from '../../../../src/app/errors.js';
import type { CheckpointDoc } from '../../../../src/checkpoint/checkpointStore.js';

const base = { MONGODB_URI: 'mongodb://h/', KAFKA_BROKERS: 'k:9092' };
const config = (env: Record<string, string>) => loadConfig({ env: { ...base, ...env } });
/** A token in MongoDB's KeyString form, taken at cluster time 1700000000.7. */
const TOKEN = { _data: `82${(1700000000).toString(16).toUpperCase()}00000007` + '2B042C0100296E5A1004' };

function checkpoint(fields: Partial<CheckpointDoc>): CheckpointDoc {
  return {
    _id: 'default',
    token: TOKEN,
    clusterTime: new BSON.Timestamp({ t: 1699999999, i: 1 }),
    counts: { published: 1, filtered: 0, deadLettered: 0 },
    writtenAt: new Date(),
    fingerprint: null,
    watch: ['shop.orders'],
    ...fields,
  };
}

describe('resume point at the edges', () => {
  it('resumes after the token while the stream scope is unchanged (a pipeline or filter edit)', () => {
    const cfg = config({
      RELAY_WATCH: 'shop.orders',
      RELAY_PIPELINE: '[{"$match":{"operationType":"insert"}}]',
    });
    expect(resumePoint(checkpoint({}), cfg).start).to.deep.equal({ startAfter: TOKEN });
  });

  it("resumes AT the token's cluster time when the scope changed: a token is only found in a stream that contains its event", () => {
    for (const watch of ['shop.customers', 'shop.*', 'shop.orders,other.x']) {
      const point = resumePoint(checkpoint({}), config({ RELAY_WATCH: watch }));
      expect(point.start, watch).to.deep.equal({
        startAtOperationTime: new BSON.Timestamp({ t: 1700000000, i: 7 }),
      });
      expect(point.from).to.contain('scope changed');
    }
  });

  it("falls back to the checkpoint's cluster time when the token format does not tell its time", () => {
    const cp = checkpoint({ token: { _data: 'ABCDEF0123456789ABCD' } });
    expect(resumePoint(cp, config({ RELAY_WATCH: 'shop.*' })).start).to.deep.equal({
      startAtOperationTime: new BSON.Timestamp({ t: 1699999999, i: 1 }),
    });
  });

  it('starts at a persisted start time (a first start that has not published yet), before RELAY_START_*', () => {
    const at = new BSON.Timestamp({ t: 1700000100, i: 2 });
    const cp = checkpoint({ token: null, startAt: at });
    expect(resumePoint(cp, config({ RELAY_WATCH: 'shop.orders', RELAY_START_AT: '5' }))).to.deep.equal({
      start: { startAtOperationTime: at },
      from: 'checkpoint',
    });
  });

  it('refuses a persisted start time of another configuration like a token, naming pipeline differences', () => {
    const stored = config({ RELAY_WATCH: 'shop.orders' });
    const cp = checkpoint({
      token: null,
      startAt: new BSON.Timestamp({ t: 1, i: 1 }),
      fingerprint: stored.derived.fingerprint,
      selection: stored.derived.selection,
    });
    const now = config({
      RELAY_WATCH: 'shop.orders',
      RELAY_PIPELINE: '[{"$match":{"operationType":"insert"}}]',
    });
    expect(() => checkWatchFingerprint(cp, now))
      .to.throw(WatchMismatchError)
      .with.property('message')
      .that.contains('RELAY_PIPELINE stored: []')
      .and.contains('RELAY_ALLOW_WATCH_CHANGE=true')
      .and.contains('token clear')
      .and.contains('RELAY_CHECKPOINT_ID');
  });

  it("names an earlier version's checkpoint of this configuration in the refusal", () => {
    const other = config({ RELAY_WATCH: 'shop.customers' });
    const cp = checkpoint({ fingerprint: other.derived.fingerprint, watch: ['shop.customers'] });
    expect(() => checkWatchFingerprint(cp, config({ RELAY_WATCH: 'shop.orders' }), 'relay-0123456789abcdef'))
      .to.throw(WatchMismatchError)
      .with.property('message')
      .that.contains('RELAY_CHECKPOINT_ID=relay-0123456789abcdef');
  });
});
