import { expect } from 'chai';
import { BSON } from 'mongodb';
import { loadConfig } from '../../../src/config/load.js';
import { resumePoint, checkWatchFingerprint } from '../../../src/app/resumePoint.js';
import { WatchMismatchError } from '../../../src/app/errors.js';
import type { CheckpointDoc } from '../../../src/checkpoint/checkpointStore.js';

const base = { MONGODB_URI: 'mongodb://h/', RELAY_WATCH: 'shop.orders', KAFKA_BROKERS: 'k:9092' };
const config = (env: Record<string, string> = {}) => loadConfig({ env: { ...base, ...env } });

function checkpoint(fields: Partial<CheckpointDoc>): CheckpointDoc {
  return {
    _id: 'c',
    token: { _data: '82AA' },
    clusterTime: null,
    counts: { published: 1, filtered: 0, deadLettered: 0 },
    writtenAt: new Date(),
    fingerprint: null,
    watch: null,
    ...fields,
  };
}

describe('resume point', () => {
  describe('resumePoint', () => {
    it('resumes after the checkpoint token, whatever RELAY_START_* say', () => {
      const cfg = config({ RELAY_START_AFTER_TOKEN: '82BB', RELAY_START_AT: '100' });
      expect(resumePoint(checkpoint({}), cfg)).to.deep.equal({
        start: { startAfter: { _data: '82AA' } },
        from: 'checkpoint',
      });
    });

    it('without a checkpoint, starts after RELAY_START_AFTER_TOKEN', () => {
      expect(
        resumePoint(null, config({ RELAY_START_AFTER_TOKEN: '82BB', RELAY_START_AT: '100' })),
      ).to.deep.equal({
        start: { startAfter: { _data: '82BB' } },
        from: 'RELAY_START_AFTER_TOKEN',
      });
    });

    it('without a checkpoint, starts at the RELAY_START_AT cluster time or date', () => {
      expect(resumePoint(null, config({ RELAY_START_AT: '1700000000.5' })).start).to.deep.equal({
        startAtOperationTime: new BSON.Timestamp({ t: 1700000000, i: 5 }),
      });
      expect(resumePoint(null, config({ RELAY_START_AT: '2023-11-14T22:13:20Z' })).start).to.deep.equal({
        startAtOperationTime: new BSON.Timestamp({ t: 1700000000, i: 0 }),
      });
    });

    it('otherwise starts now', () => {
      expect(resumePoint(null, config())).to.deep.equal({ start: { now: true }, from: 'now' });
      expect(resumePoint(checkpoint({ token: null }), config()).from).to.equal('now');
    });
  });

  describe('checkWatchFingerprint', () => {
    it('accepts a checkpoint of the same watch configuration, or one whose position was set by hand', () => {
      const cfg = config();
      expect(checkWatchFingerprint(checkpoint({ fingerprint: cfg.derived.fingerprint }), cfg)).to.equal(
        'same',
      );
      expect(checkWatchFingerprint(checkpoint({ fingerprint: null }), cfg)).to.equal('same');
    });

    it('refuses a checkpoint written with other watch targets, naming both and the ways out', () => {
      const other = config({ RELAY_WATCH: 'shop.customers' });
      const cp = checkpoint({ fingerprint: other.derived.fingerprint, watch: ['shop.customers'] });
      expect(() => checkWatchFingerprint(cp, config()))
        .to.throw(WatchMismatchError)
        .with.property('message')
        .that.contains('stored: shop.customers; now: shop.orders')
        .and.contains('RELAY_ALLOW_WATCH_CHANGE=true');
    });

    it('a different pipeline is a different watch configuration too', () => {
      const piped = config({ RELAY_PIPELINE: '[{"$match":{"operationType":"insert"}}]' });
      expect(piped.derived.fingerprint).to.not.equal(config().derived.fingerprint);
    });

    it('lets RELAY_ALLOW_WATCH_CHANGE keep the position', () => {
      const other = config({ RELAY_WATCH: 'shop.customers' });
      const cp = checkpoint({ fingerprint: other.derived.fingerprint });
      expect(checkWatchFingerprint(cp, config({ RELAY_ALLOW_WATCH_CHANGE: 'true' }))).to.equal(
        'allowed-change',
      );
    });
  });
});
