import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';

import {
  DeadLetterHeader,
  MAX_ERROR_HEADER_LENGTH,
  buildDeadLetterMessage,
  deadLetterPartition,
  defaultDeadLetterTopic,
} from '../../../src/consumer/deadLetter.js';

describe('consumer/deadLetter', () => {
  const message: KafkaMessage = {
    key: Buffer.from('82ABCDEF'),
    value: Buffer.from('{"operationType":"insert"}'),
    headers: {
      'change-id': Buffer.from('82ABCDEF'),
      ns: Buffer.from('shop.orders'),
      'dead-letter-reason': 'old',
    },
    offset: '17',
    timestamp: '1700000000000',
    attributes: 0,
  };
  const info = {
    reason: 'handler-failed',
    error: 'E11000 boom',
    errorName: 'MongoServerError',
    attempts: 5,
  } as const;

  it('names the dead-letter topic <topic>.dlq by default', () => {
    expect(defaultDeadLetterTopic('shop.orders')).to.equal('shop.orders.dlq');
  });

  describe('deadLetterPartition', () => {
    it('keeps the source partition when the dead-letter topic has as many', () => {
      expect([0, 1, 2, 5].map((p) => deadLetterPartition(p, 6))).to.deep.equal([0, 1, 2, 5]);
    });

    it('folds source partitions onto fewer dead-letter partitions, one source partition to one', () => {
      expect([0, 1, 2, 3, 4, 5].map((p) => deadLetterPartition(p, 4))).to.deep.equal([0, 1, 2, 3, 0, 1]);
      expect(deadLetterPartition(3, 1)).to.equal(0);
      expect(deadLetterPartition(3, 0), 'unknown count').to.equal(0);
    });
  });

  describe('buildDeadLetterMessage', () => {
    const dead = buildDeadLetterMessage(
      { topic: 'shop.orders', partition: 2, message },
      info,
      'order-view',
      2,
    );

    it('keeps the original key, value and headers', () => {
      expect(dead.key).to.equal(message.key);
      expect(dead.value).to.equal(message.value);
      expect(dead.headers?.['change-id']).to.equal(message.headers?.['change-id']);
      expect(dead.headers?.ns).to.equal(message.headers?.ns);
    });

    it('adds the dead-letter headers (replacing stale ones), with the group and the error class', () => {
      expect(dead.headers).to.include({
        [DeadLetterHeader.reason]: 'handler-failed',
        [DeadLetterHeader.error]: 'E11000 boom',
        [DeadLetterHeader.errorName]: 'MongoServerError',
        [DeadLetterHeader.attempts]: '5',
        [DeadLetterHeader.groupId]: 'order-view',
        [DeadLetterHeader.sourceTopic]: 'shop.orders',
        [DeadLetterHeader.sourcePartition]: '2',
        [DeadLetterHeader.sourceOffset]: '17',
      });
    });

    it('targets the given partition', () => {
      expect(dead.partition).to.equal(2);
    });

    it('cuts very long error messages', () => {
      const long = buildDeadLetterMessage(
        { topic: 't', partition: 0, message },
        { ...info, error: 'x'.repeat(10_000) },
        'g',
        0,
      );
      expect(String(long.headers?.[DeadLetterHeader.error])).to.have.length(MAX_ERROR_HEADER_LENGTH);
    });
  });
});
