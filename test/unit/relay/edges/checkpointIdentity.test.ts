import { expect } from 'chai';
import { loadConfig } from '../../../../src/config/load.js';
import {
  DEFAULT_CHECKPOINT_ID,
  LegacyCheckpointError,
  chooseCheckpoint,
  isLegacyCheckpointId,
  legacyCheckpointId,
  type LegacyCheckpoint,
} from '../../../../src/checkpoint/checkpointIdentity.js';
import type { CheckpointDoc } from '../../../../src/checkpoint/checkpointStore.js';

const base = { MONGODB_URI: 'mongodb://h/', RELAY_WATCH: 'shop.orders', KAFKA_BROKERS: 'k:9092' };
const config = (env: Record<string, string> = {}) => loadConfig({ env: { ...base, ...env } });

function doc(id: string, fields: Partial<CheckpointDoc> = {}): CheckpointDoc {
  return {
    _id: id,
    token: { _data: '82AA' },
    clusterTime: null,
    counts: { published: 1, filtered: 0, deadLettered: 0 },
    writtenAt: new Date(),
    fingerprint: null,
    watch: ['shop.orders'],
    ...fields,
  };
}

const legacy = (id: string, fields: Partial<CheckpointDoc> = {}, leaseLive = false): LegacyCheckpoint => ({
  doc: doc(id, fields),
  leaseLive,
});

describe('checkpoint identity', () => {
  describe('the checkpoint ID', () => {
    it('is "default" when RELAY_CHECKPOINT_ID is unset, whatever the watch configuration', () => {
      const envs: Record<string, string>[] = [
        {},
        { RELAY_WATCH: 'shop.*' },
        { RELAY_PIPELINE: '[{"$match":{"a":1}}]' },
      ];
      for (const env of envs) {
        const c = config(env);
        expect(c.derived.checkpointId).to.equal(DEFAULT_CHECKPOINT_ID);
        expect(c.derived.checkpointIdDefault).to.equal(true);
      }
    });

    it('is RELAY_CHECKPOINT_ID when set', () => {
      const c = config({ RELAY_CHECKPOINT_ID: 'orders' });
      expect(c.derived.checkpointId).to.equal('orders');
      expect(c.derived.checkpointIdDefault).to.equal(false);
    });

    it('recognises the IDs earlier versions derived from the fingerprint', () => {
      const c = config();
      expect(legacyCheckpointId(c.derived.fingerprint)).to.match(/^relay-[0-9a-f]{16}$/);
      expect(isLegacyCheckpointId(legacyCheckpointId(c.derived.fingerprint))).to.equal(true);
      expect(isLegacyCheckpointId('relay-orders')).to.equal(false);
      expect(isLegacyCheckpointId(DEFAULT_CHECKPOINT_ID)).to.equal(false);
    });
  });

  describe('chooseCheckpoint', () => {
    const c = config();
    const ours = legacyCheckpointId(c.derived.fingerprint);
    const other = legacyCheckpointId(config({ RELAY_WATCH: 'shop.customers' }).derived.fingerprint);

    it('continues the configured checkpoint when it has a position, ignoring earlier versions', () => {
      expect(chooseCheckpoint(doc('default'), [legacy(ours)], c)).to.deep.equal({ kind: 'configured' });
      expect(
        chooseCheckpoint(doc('default', { token: null, startAt: null }), [], c),
        'no position and nothing to adopt: a fresh start',
      ).to.deep.equal({ kind: 'configured' });
    });

    it('adopts the derived-ID checkpoint of this very configuration', () => {
      const mine = legacy(ours);
      expect(chooseCheckpoint(null, [legacy(other), mine], c)).to.deep.equal({ kind: 'adopt', from: mine });
    });

    it('adopts a single derived-ID checkpoint of another configuration only with RELAY_ALLOW_WATCH_CHANGE', () => {
      const theirs = legacy(other, { watch: ['shop.customers'] });
      expect(() => chooseCheckpoint(null, [theirs], c))
        .to.throw(LegacyCheckpointError)
        .with.property('message')
        .that.contains(other)
        .and.contains('RELAY_ALLOW_WATCH_CHANGE=true')
        .and.contains(`RELAY_CHECKPOINT_ID=${other}`)
        .and.contains('RELAY_CHECKPOINT_ID=default');
      expect(chooseCheckpoint(null, [theirs], config({ RELAY_ALLOW_WATCH_CHANGE: 'true' }))).to.deep.equal({
        kind: 'adopt',
        from: theirs,
      });
    });

    it('refuses several derived-ID checkpoints none of which is this configuration, listing them (exit 3)', () => {
      const a = legacy('relay-00000000000000aa', { watch: ['a.x'] });
      const b = legacy('relay-00000000000000bb', { watch: ['b.*'] });
      let error: unknown;
      try {
        chooseCheckpoint(null, [a, b], config({ RELAY_ALLOW_WATCH_CHANGE: 'true' }));
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(LegacyCheckpointError);
      const e = error as LegacyCheckpointError;
      expect(e.exitCode).to.equal(3);
      expect(e.message)
        .to.contain('relay-00000000000000aa (watch a.x)')
        .and.contain('relay-00000000000000bb (watch b.*)');
      expect(e.message).to.contain('give each relay its own RELAY_CHECKPOINT_ID');
    });

    it('never looks at earlier versions when RELAY_CHECKPOINT_ID is set', () => {
      expect(
        chooseCheckpoint(null, [legacy(other)], config({ RELAY_CHECKPOINT_ID: 'default' })),
      ).to.deep.equal({
        kind: 'configured',
      });
    });
  });
});
