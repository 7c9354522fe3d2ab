import { expect } from 'chai';
import {
  parseWatchTargets,
  streamScope,
  targetsInclude,
  formatTarget,
} from '../../../src/config/watchTargets.js';
import { buildStreamPipeline } from '../../../src/source/streamPipeline.js';

describe('watch targets', () => {
  describe('parseWatchTargets', () => {
    it('reads collections, whole databases and the whole deployment', () => {
      expect(parseWatchTargets('shop.orders, shop.*')).to.deep.equal([{ kind: 'database', db: 'shop' }]);
      expect(parseWatchTargets('shop.orders,crm.people').map(formatTarget)).to.deep.equal([
        'shop.orders',
        'crm.people',
      ]);
      expect(parseWatchTargets('*')).to.deep.equal([{ kind: 'deployment' }]);
    });

    it('keeps dots after the first one in the collection name', () => {
      expect(parseWatchTargets('db.a.b')).to.deep.equal([{ kind: 'collection', db: 'db', coll: 'a.b' }]);
    });

    for (const [spec, fragment] of [
      ['', 'at least one target'],
      ['orders', 'must be db.coll'],
      ['admin.users', 'system database'],
      ['*,shop.orders', 'cannot be combined'],
      ['db.system.profile', 'not a watchable collection'],
      ['my db.x', 'not a valid database name'],
    ] as const) {
      it(`refuses ${JSON.stringify(spec)} saying "${fragment}"`, () => {
        expect(() => parseWatchTargets(spec)).to.throw(fragment);
      });
    }
  });

  describe('streamScope', () => {
    it('uses a collection stream for one collection', () => {
      expect(streamScope(parseWatchTargets('a.b'))).to.deep.equal({
        level: 'collection',
        db: 'a',
        coll: 'b',
      });
    });
    it('uses a database stream for several collections of one database', () => {
      expect(streamScope(parseWatchTargets('a.b,a.c'))).to.deep.equal({ level: 'database', db: 'a' });
    });
    it('uses a deployment stream across databases', () => {
      expect(streamScope(parseWatchTargets('a.b,c.*'))).to.deep.equal({ level: 'deployment' });
    });
  });

  describe('buildStreamPipeline', () => {
    const own = { checkpointDb: 'mongo_kafka_relay', checkpointColl: 'checkpoints' };

    it('matches the targets, lets invalidate through, then appends the user stages', () => {
      const targets = parseWatchTargets('a.b,c.*');
      const user = [{ $match: { operationType: 'insert' } }];
      const stages = buildStreamPipeline(streamScope(targets), targets, own, user);
      expect(stages[0]).to.deep.equal({
        $match: {
          $or: [{ 'ns.db': 'a', 'ns.coll': 'b' }, { 'ns.db': 'c' }, { operationType: 'invalidate' }],
        },
      });
      expect(stages[1]).to.deep.equal({ $match: { $nor: [{ 'ns.db': 'mongo_kafka_relay' }] } });
      expect(stages[2]).to.deep.equal(user[0]);
    });

    it('excludes the checkpoint collection when its database is watched', () => {
      const targets = parseWatchTargets('mongo_kafka_relay.*');
      expect(buildStreamPipeline(streamScope(targets), targets, own, [])).to.deep.equal([
        { $match: { $nor: [{ 'ns.db': 'mongo_kafka_relay', 'ns.coll': 'checkpoints' }] } },
      ]);
    });

    it('adds nothing for a single collection elsewhere', () => {
      const targets = parseWatchTargets('shop.orders');
      expect(buildStreamPipeline(streamScope(targets), targets, own, [])).to.deep.equal([]);
    });
  });

  it('targetsInclude tells whether a namespace is watched', () => {
    const targets = parseWatchTargets('a.b,c.*');
    expect(targetsInclude(targets, { db: 'a', coll: 'b' })).to.equal(true);
    expect(targetsInclude(targets, { db: 'a', coll: 'x' })).to.equal(false);
    expect(targetsInclude(targets, { db: 'c', coll: 'anything' })).to.equal(true);
  });
});
