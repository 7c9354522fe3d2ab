import { expect } from 'chai';
import type { MongoClient } from 'mongodb';

import { ChangeConsumerConfigError } from '../../../src/consumer/errors.js';
import { resolveOptions, type ChangeConsumerOptions } from '../../../src/consumer/options.js';

describe('consumer/options', () => {
  const base: ChangeConsumerOptions = {
    kafka: { brokers: ['localhost:9092'] },
    groupId: 'g',
    topics: 'shop.orders',
    mongo: { client: {} as MongoClient },
    handler: () => undefined,
  };

  describe('resolveOptions', () => {
    it('applies the documented defaults', () => {
      const resolved = resolveOptions(base);
      expect(resolved.mode).to.equal('idempotent-handler');
      expect(resolved.seen).to.deep.equal({
        db: 'mongo_kafka_relay',
        collection: 'seen_changes',
        scope: 'g',
        expireAfterSeconds: 1_296_000,
        onTtlMismatch: 'extend',
        retentionCheck: 'warn',
        flushIntervalMs: 100,
      });
      expect(resolved.retryLimits).to.deep.equal({ attempts: Infinity, maxElapsedMs: Infinity });
      expect(resolved.handlerBackoff).to.deep.equal({
        initialDelayMs: 200,
        maxDelayMs: 60_000,
        multiplier: 2,
        jitter: 0.5,
      });
      expect(resolved.classify).to.equal(undefined);
      expect(resolved.partitionsConcurrently).to.equal(4);
      expect(resolved.batchSize).to.equal(1_000);
      expect(resolved.handlerTimeoutMs).to.equal(30_000);
      expect(resolved.stopTimeoutMs).to.equal(30_000);
      expect(resolved.commit).to.deep.equal({ everyRecords: 1_000, intervalMs: 5_000 });
      expect(resolved.fromBeginning).to.equal(true);
      expect(resolved.relaxedEjson).to.equal(false);
      expect(resolved.topics).to.deep.equal(['shop.orders']);
      expect(resolved.deadLetterTopicFor('shop.orders')).to.equal('shop.orders.dlq');
    });

    it('scopes the seen marks by the consumer group unless told otherwise', () => {
      expect(resolveOptions({ ...base, groupId: 'search-indexer' }).seen.scope).to.equal('search-indexer');
      expect(resolveOptions({ ...base, seen: { scope: 'old-group' } }).seen.scope).to.equal('old-group');
    });

    it('accepts a batch handler instead of a handler, and no limit as Infinity', () => {
      const { handler: _handler, ...withoutHandler } = base;
      const resolved = resolveOptions({
        ...withoutHandler,
        batchHandler: () => undefined,
        retry: { attempts: 10, maxElapsedMs: 60_000 },
        handlerTimeoutMs: Infinity,
      });
      expect(resolved.retryLimits).to.deep.equal({ attempts: 10, maxElapsedMs: 60_000 });
      expect(resolved.handlerTimeoutMs).to.equal(Infinity);
    });

    it('accepts a fixed dead-letter topic or a function of the source topic', () => {
      expect(resolveOptions({ ...base, deadLetter: { topic: 'all.dlq' } }).deadLetterTopicFor('x')).to.equal(
        'all.dlq',
      );
      expect(
        resolveOptions({ ...base, deadLetter: { topic: (t) => `dlq.${t}` } }).deadLetterTopicFor('x'),
      ).to.equal('dlq.x');
    });

    it('accepts RegExp topics', () => {
      expect(resolveOptions({ ...base, topics: [/^shop\.(?!.*\.dlq$)/, 'other'] }).topics).to.have.length(2);
    });

    const invalid: Array<[string, Partial<ChangeConsumerOptions>, RegExp]> = [
      ['an empty group id', { groupId: '' }, /groupId/],
      [
        'both a handler and a batch handler',
        { batchHandler: () => undefined } as never,
        /exactly one of handler/,
      ],
      ['a fractional attempts limit', { retry: { attempts: 2.5 } }, /retry.attempts/],
      ['a zero handler timeout', { handlerTimeoutMs: 0 }, /handlerTimeoutMs/],
      ['an unknown retention check', { seen: { retentionCheck: 'maybe' as 'warn' } }, /retentionCheck/],
      ['zero records per commit', { commit: { everyRecords: 0 } }, /commit.everyRecords/],
      ['no topics', { topics: [] }, /topics/],
      ['zero attempts', { retry: { attempts: 0 } }, /retry.attempts/],
      ['a max delay below the initial delay', { retry: { initialDelayMs: 10, maxDelayMs: 5 } }, /maxDelayMs/],
      ['a negative TTL', { seen: { expireAfterSeconds: -1 } }, /expireAfterSeconds/],
      [
        'a TTL of 0 (marks would vanish within a minute: no dedupe)',
        { seen: { expireAfterSeconds: 0 } },
        /expireAfterSeconds.*0/,
      ],
      ['an unknown TTL policy', { seen: { onTtlMismatch: 'ignore' as 'fail' } }, /onTtlMismatch/],
      ['an unknown mode', { mode: 'exactly-once' as 'idempotent-handler' }, /mode/],
      ['zero concurrency', { partitionsConcurrently: 0 }, /partitionsConcurrently/],
      ['no mongo connection', { mongo: {} as { uri: string } }, /mongo/],
    ];
    for (const [what, patch, message] of invalid) {
      it(`rejects ${what}`, () => {
        expect(() => resolveOptions({ ...base, ...patch } as ChangeConsumerOptions))
          .to.throw(ChangeConsumerConfigError)
          .with.property('message')
          .that.matches(message);
      });
    }
  });
});
