import { expect } from 'chai';
import { Long } from 'mongodb';

import { decideTtlAction, seenDocument } from '../../../src/consumer/seenStore.js';

describe('consumer/seenStore', () => {
  describe('decideTtlAction', () => {
    it('creates a missing index and leaves an equal one alone, whatever the policy', () => {
      for (const policy of ['extend', 'update', 'fail'] as const) {
        expect(decideTtlAction(null, 3_600, policy)).to.equal('create');
        expect(decideTtlAction(3_600, 3_600, policy)).to.equal('unchanged');
      }
    });

    it("'extend' (default) raises a shorter TTL but never shortens one another application may rely on", () => {
      expect(decideTtlAction(600, 3_600, 'extend')).to.equal('update');
      expect(decideTtlAction(7_200, 3_600, 'extend')).to.equal('kept-longer');
      expect(decideTtlAction(undefined, 3_600, 'extend'), 'no TTL: marks never expire').to.equal(
        'kept-longer',
      );
    });

    it("'update' sets exactly the configured TTL; 'fail' refuses any difference", () => {
      expect(decideTtlAction(7_200, 3_600, 'update')).to.equal('update');
      expect(decideTtlAction(600, 3_600, 'update')).to.equal('update');
      expect(decideTtlAction(undefined, 3_600, 'update')).to.equal('update');
      expect(decideTtlAction(7_200, 3_600, 'fail')).to.equal('fail');
      expect(decideTtlAction(600, 3_600, 'fail')).to.equal('fail');
    });
  });

  describe('seenDocument', () => {
    const now = new Date('2026-01-01T00:00:00Z');

    it('keys a mark by scope and change ID, with the outcome and a 64-bit offset', () => {
      const doc = seenDocument(
        'order-view',
        { changeId: '82AB', topic: 't', partition: 3, offset: '9007199254740993', outcome: 'handled' },
        now,
      );
      expect(doc).to.deep.include({
        _id: 'order-view:82AB',
        scope: 'order-view',
        changeId: '82AB',
        topic: 't',
        partition: 3,
      });
      expect(doc.offset).to.be.instanceOf(Long);
      expect(doc.offset.toString()).to.equal('9007199254740993');
      expect(doc).to.include({ seenAt: now, outcome: 'handled' });
      expect(doc).to.not.have.property('deadLetter');
    });

    it('records why and where a dead-lettered change went', () => {
      const deadLetter = { reason: 'handler-failed' as const, error: 'boom', topic: 't.dlq', attempts: 3 };
      const doc = seenDocument(
        'g',
        { changeId: '82AB', topic: 't', partition: 0, offset: '1', outcome: 'dead-lettered', deadLetter },
        now,
      );
      expect(doc).to.deep.include({ outcome: 'dead-lettered', deadLetter });
    });
  });
});
