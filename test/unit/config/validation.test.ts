import { expect } from 'chai';
import { BSON } from 'mongodb';
import { loadConfig } from '../../../src/config/load.js';
import { BASE_ENV, configFrom, configErrorFrom } from './helpers.js';

describe('configuration validation (issue 10.15)', () => {
  describe('RELAY_WATCH follows MongoDB’s naming rules', () => {
    for (const [watch, why] of [
      ['db..x', /collection name ".x"/],
      ['shop.', /db\.coll, db\.\* or \*/],
      ['sh$op.orders', /"sh\$op" is not a valid database name/],
      ['shop.ord$ers', /"ord\$ers" is not a valid collection name/],
      ['shop.system.views', /system\./],
      [`${'d'.repeat(64)}.x`, /shorter than 64 bytes/],
      [`shop.${'c'.repeat(251)}`, /255 bytes/],
      ['config.x', /system database "config"/],
    ] as const) {
      it(`refuses ${JSON.stringify(watch.length > 40 ? `${watch.slice(0, 20)}…` : watch)}`, () => {
        const error = configErrorFrom({ RELAY_WATCH: watch });
        expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_WATCH']);
        expect(error.message).to.match(why);
      });
    }

    it('names every bad target at once', () => {
      const error = configErrorFrom({ RELAY_WATCH: 'db..x,ok.fine,a$b.c' });
      expect(error.message).to.contain('".x"').and.to.contain('"a$b"');
    });

    it('accepts names MongoDB accepts, dots inside collection names included', () => {
      expect(
        configFrom({ RELAY_WATCH: 'shop.orders.archive,shop-eu.Orders_2024' }).derived.targets,
      ).to.have.length(2);
    });

    it('applies the same rules to RELAY_CHECKPOINT_DB and RELAY_CHECKPOINT_COLLECTION', () => {
      const error = configErrorFrom({ RELAY_CHECKPOINT_DB: 'my db', RELAY_CHECKPOINT_COLLECTION: 'cp$' });
      expect(error.problems.map((p) => p.variable)).to.have.members([
        'RELAY_CHECKPOINT_DB',
        'RELAY_CHECKPOINT_COLLECTION',
      ]);
    });
  });

  describe('RELAY_PIPELINE refuses stages that break resuming or the record contract', () => {
    for (const [stage, why] of [
      [{ $project: { _id: 0 } }, /_id/],
      [{ $project: { _id: false, fullDocument: 1 } }, /_id/],
      [{ $project: { '_id._data': 0 } }, /_id/],
      [{ $project: { _id: '$documentKey' } }, /_id/],
      [{ $project: { fullDocument: 1 } }, /keeps only the fields it names.*operationType/],
      [{ $unset: '_id' }, /_id/],
      [{ $unset: ['fullDocument.secret', '_id._data'] }, /_id/],
      [{ $addFields: { _id: 'x' } }, /_id/],
      [{ $set: { '_id.extra': 1 } }, /_id/],
      [{ $set: { ns: { db: 'other' } } }, /ns/],
      [{ $replaceRoot: { newRoot: '$fullDocument' } }, /_id/],
      [{ $replaceWith: { _id: '$documentKey', x: 1 } }, /_id/],
      [{ $group: { _id: null } }, /\$group is not allowed/],
      [{ $lookup: { from: 'x', as: 'y' } }, /\$lookup is not allowed/],
    ] as const) {
      it(`refuses ${JSON.stringify(stage)}`, () => {
        const error = configErrorFrom({ RELAY_PIPELINE: JSON.stringify([{ $match: {} }, stage]) });
        expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_PIPELINE']);
        expect(error.message)
          .to.match(/stage 1/)
          .and.to.match(why);
      });
    }

    for (const stage of [
      { $match: { operationType: 'insert' } },
      { $project: { 'fullDocument.secret': 0, updateDescription: 0 } },
      { $project: { _id: 1, operationType: 1, ns: 1, documentKey: 1, clusterTime: 1, fullDocument: 1 } },
      { $unset: ['fullDocument.password', 'fullDocumentBeforeChange'] },
      { $set: { 'fullDocument.seenBy': 'relay' } },
      { $replaceRoot: { newRoot: { $mergeObjects: ['$$ROOT', { extra: 1 }] } } },
      {
        $replaceWith: {
          $mergeObjects: [
            '$fullDocument',
            {
              _id: '$_id',
              operationType: '$operationType',
              ns: '$ns',
              documentKey: '$documentKey',
              clusterTime: '$clusterTime',
            },
          ],
        },
      },
      { $redact: '$$KEEP' },
    ]) {
      it(`accepts ${JSON.stringify(stage)}`, () => {
        expect(configFrom({ RELAY_PIPELINE: JSON.stringify([stage]) }).derived.pipeline).to.have.length(1);
      });
    }
  });

  describe('RELAY_START_AT accepts only "now", ISO-8601 or <seconds>[.<increment>]', () => {
    for (const text of [
      'version 2',
      'May 1, 2024',
      '2024-13-01',
      '2024-02-30',
      '2024-05-01T10:00:00',
      '1.2.3',
      '-5',
      '99999999999',
      'tomorrow',
      '',
    ]) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        const error = configErrorFrom({ RELAY_START_AT: text });
        expect(error.problems.map((p) => p.variable)).to.deep.equal(['RELAY_START_AT']);
        expect(error.message).to.contain('ISO-8601');
      });
    }

    for (const [text, seconds, increment] of [
      ['2024-05-01T10:00:00Z', Date.UTC(2024, 4, 1, 10) / 1000, 0],
      ['2024-05-01T12:00:00+02:00', Date.UTC(2024, 4, 1, 10) / 1000, 0],
      ['2024-05-01T10:00:00.750Z', Date.UTC(2024, 4, 1, 10) / 1000, 0],
      ['2024-05-01', Date.UTC(2024, 4, 1) / 1000, 0],
      ['1714557600', 1714557600, 0],
      ['1714557600.7', 1714557600, 7],
    ] as const) {
      it(`reads ${text} as cluster time ${seconds}.${increment}`, () => {
        const position = configFrom({ RELAY_START_AT: text }).derived.initialPosition;
        expect(position).to.deep.equal({
          kind: 'clusterTime',
          time: new BSON.Timestamp({ t: seconds, i: increment }),
        });
      });
    }
  });

  describe('RELAY_MAX_IN_FLIGHT unset (0) follows the delivery mode', () => {
    it('is 2000 in at-least-once, 8000 in exactly-once, and what is set in either', () => {
      expect(configFrom({}).relay.maxInFlight).to.equal(2000);
      expect(configFrom({ RELAY_DELIVERY: 'exactly-once' }).relay.maxInFlight).to.equal(8000);
      expect(configFrom({ RELAY_MAX_IN_FLIGHT: '0' }).relay.maxInFlight).to.equal(2000);
      expect(
        configFrom({ RELAY_DELIVERY: 'exactly-once', RELAY_MAX_IN_FLIGHT: '300' }).relay.maxInFlight,
      ).to.equal(300);
    });
  });

  describe('every problem at once', () => {
    it('reports field and cross-field problems together, each naming its variable', () => {
      const error = configErrorFrom({
        RELAY_WATCH: 'db..x',
        RELAY_START_AT: 'version 2',
        KAFKA_SSL: 'maybe',
        RELAY_OPERATION_TYPES: 'inserts',
        RELAY_LEASE_TTL_MS: '4000',
        RELAY_LEASE_RENEW_MS: '3000',
        KAFKA_SASL_MECHANISM: 'plain',
        MONGODB_URI: 'mongodb://127.0.0.1:1/?fooBar=1',
      });
      expect(error.problems.map((p) => p.variable)).to.have.members([
        'MONGODB_URI',
        'RELAY_WATCH',
        'RELAY_START_AT',
        'KAFKA_SSL',
        'RELAY_OPERATION_TYPES',
        'RELAY_LEASE_RENEW_MS',
        'KAFKA_SASL_USERNAME',
        'KAFKA_SASL_PASSWORD',
      ]);
    });

    it('refuses numbers with trailing garbage instead of reading their prefix', () => {
      const error = configErrorFrom({ METRICS_PORT: '9464abc', RELAY_MAX_IN_FLIGHT: '2k' });
      expect(error.problems.map((p) => p.variable)).to.have.members(['METRICS_PORT', 'RELAY_MAX_IN_FLIGHT']);
      expect(error.message).to.contain('value was "9464abc"');
    });
  });
});

describe('what a command needs (issue 14.11)', () => {
  it('does not require KAFKA_BROKERS for commands that only touch the checkpoint', () => {
    for (const brokers of [undefined, '']) {
      const env = { ...BASE_ENV, KAFKA_BROKERS: brokers };
      expect(loadConfig({ env, purpose: 'checkpoint' }).derived.brokers).to.deep.equal([]);
      expect(() => loadConfig({ env, purpose: 'daemon' })).to.throw(/KAFKA_BROKERS \(kafka\.brokers\)/);
    }
  });
});
