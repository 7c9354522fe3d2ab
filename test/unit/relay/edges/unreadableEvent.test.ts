import { expect } from 'chai';
import { BSON, MongoServerError } from 'mongodb';
import {
  UnreadableEventError,
  classifyUnreadable,
  describeChange,
  narrowRead,
} from '../../../../src/source/unreadableEvent.js';
import { versionHasSplitStage } from '../../../../src/source/serverFeatures.js';

const serverError = (code: number, codeName: string, errmsg: string) =>
  new MongoServerError({ ok: 0, code, codeName, errmsg });

const images = (
  fullDocument: 'updateLookup' | 'required' = 'updateLookup',
  before: 'off' | 'required' = 'off',
) => ({
  fullDocument,
  fullDocumentBeforeChange: before,
});

describe('events the change stream cannot deliver', () => {
  describe('classifyUnreadable', () => {
    it('BSONObjectTooLarge (10334) is an event over 16 MB', () => {
      expect(
        classifyUnreadable(
          serverError(10334, 'BSONObjectTooLarge', 'BSONObj size: 17000000 is invalid'),
          images(),
        ),
      ).to.equal('too-large-for-mongodb');
    });

    it('a fragment the split stage cannot make small enough (7182500) is one too', () => {
      const e = serverError(
        7182500,
        'Location7182500',
        'Splitting change event failed: fragment size 17000000 is greater than maximum allowed fragment size 16777216',
      );
      expect(classifyUnreadable(e, images())).to.equal('too-large-for-mongodb');
    });

    it('NoMatchingDocument (47) is a missing image only when an image is required', () => {
      const missingPre = serverError(
        47,
        'NoMatchingDocument',
        'Change stream was configured to require a pre-image for all update, delete and replace events, but the pre-image was not found',
      );
      const missingPost = serverError(
        47,
        'NoMatchingDocument',
        'Change stream was configured to require a post-image for all update events, but the post-image was not found',
      );
      expect(classifyUnreadable(missingPre, images('updateLookup', 'required'))).to.equal(
        'pre-image-missing',
      );
      expect(classifyUnreadable(missingPost, images('required', 'off'))).to.equal('post-image-missing');
      expect(classifyUnreadable(missingPre, images('required', 'required'))).to.equal('pre-image-missing');
      expect(classifyUnreadable(missingPost, images('required', 'required'))).to.equal('post-image-missing');
      expect(classifyUnreadable(missingPost, images())).to.equal(null);
    });

    it('a BSONError (an event the driver cannot decode, e.g. a string that is not UTF-8) is one event', () => {
      // What the driver throws for a change event holding invalid UTF-8 (enableUtf8Validation, its default).
      const bytes = Buffer.from(BSON.serialize({ s: 'AXX' }));
      bytes.set([0xc3, 0x28], bytes.indexOf('XX')); // { s: "A\xC3(" }: 0x28 cannot continue 0xC3
      let thrown: unknown;
      try {
        BSON.deserialize(bytes);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, 'the driver decoder rejects it').to.be.instanceOf(BSON.BSONError);
      expect((thrown as Error).message).to.match(/UTF-8/i);
      expect(classifyUnreadable(thrown, images())).to.equal('undecodable');
      // One from another copy of the bson package is recognised too (not by instanceof).
      const foreign = Object.assign(new Error('Invalid UTF-8 string in BSON document'), {
        name: 'BSONError',
      });
      Object.defineProperty(foreign, 'bsonError', { value: true });
      expect(classifyUnreadable(foreign, images())).to.equal('undecodable');
    });

    it('anything else is not about one event', () => {
      expect(classifyUnreadable(serverError(286, 'ChangeStreamHistoryLost', 'gone'), images())).to.equal(
        null,
      );
      expect(classifyUnreadable(new Error('network'), images())).to.equal(null);
    });
  });

  describe('narrowRead', () => {
    it('keeps only what names the change, _id (the resume token) included, and asks for images only when available', () => {
      const n = narrowRead(images('required', 'required'));
      const [project] = n.tail as [{ $project: Record<string, number> }];
      expect(Object.keys(project.$project)).to.include.members([
        '_id',
        'operationType',
        'ns',
        'documentKey',
        'clusterTime',
      ]);
      expect(Object.keys(project.$project)).to.not.include.members([
        'fullDocument',
        'fullDocumentBeforeChange',
        'updateDescription',
      ]);
      expect(
        Object.values(project.$project).every((v) => v === 1),
        'an inclusion projection',
      ).to.equal(true);
      expect(n.images).to.deep.equal({
        fullDocument: 'whenAvailable',
        fullDocumentBeforeChange: 'whenAvailable',
      });
      expect(narrowRead(images()).images).to.deep.equal(images());
    });

    it('reads without UTF-8 validation, so a bad string in the document key does not hide the change', () => {
      expect(narrowRead(images()).enableUtf8Validation).to.equal(false);
    });
  });

  describe('naming the change', () => {
    it('says which change, of what, when', () => {
      const text = describeChange({
        _id: { _data: '82ABC' },
        operationType: 'update',
        ns: { db: 'shop', coll: 'orders' },
        documentKey: { _id: 7 },
        clusterTime: new BSON.Timestamp({ t: 1700000000, i: 3 }),
      });
      expect(text).to.equal(
        'the change 82ABC (update of shop.orders {"_id":7} at cluster time 1700000000.3)',
      );
      const error = new UnreadableEventError('pre-image-missing', null, new Error('x'));
      expect(error.message).to.contain('could not be read even without its large fields');
    });
  });

  describe('$changeStreamSplitLargeEvent support by version', () => {
    it('exists from 7.0 and 6.0.9 (6.3 among the rapid releases)', () => {
      expect(versionHasSplitStage([7, 0, 0])).to.equal(true);
      expect(versionHasSplitStage([8, 0, 4])).to.equal(true);
      expect(versionHasSplitStage([6, 0, 9])).to.equal(true);
      expect(versionHasSplitStage([6, 0, 8])).to.equal(false);
      expect(versionHasSplitStage([6, 3, 0])).to.equal(true);
      expect(versionHasSplitStage([6, 2, 1])).to.equal(false);
      expect(versionHasSplitStage([5, 0, 20])).to.equal(false);
    });
  });
});
