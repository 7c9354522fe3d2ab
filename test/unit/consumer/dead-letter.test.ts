import { expect } from 'chai';
import type { KafkaMessage } from 'kafkajs';

import { DeadLetterHeader } from '../../../src/contract/record.js';
import {
  MAX_ERROR_HEADER_LENGTH,
  buildDeadLetterMessage,
  defaultDeadLetterTopic,
} from '../../../src/consumer/dead-letter.js';

describe('consumer/dead-letter', () => {
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

  it('names the dead-letter topic <topic>.dlq by default', () => {
    expect(defaultDeadLetterTopic('shop.orders')).to.equal('shop.orders.dlq');
  });

  describe('buildDeadLetterMessage', () => {
    const dead = buildDeadLetterMessage(
      { topic: 'shop.orders', partition: 2, message },
      { reason: 'handler-failed', error: 'E11000 boom', attempts: 5 },
    );

    it('keeps the original key, value and headers', () => {
      expect(dead.key).to.equal(message.key);
      expect(dead.value).to.equal(message.value);
      expect(dead.headers?.['change-id']).to.equal(message.headers?.['change-id']);
      expect(dead.headers?.ns).to.equal(message.headers?.ns);
    });

    it('adds the dead-letter headers (replacing stale ones)', () => {
      expect(dead.headers).to.include({
        [DeadLetterHeader.reason]: 'handler-failed',
        [DeadLetterHeader.error]: 'E11000 boom',
        [DeadLetterHeader.attempts]: '5',
        [DeadLetterHeader.sourceTopic]: 'shop.orders',
        [DeadLetterHeader.sourcePartition]: '2',
        [DeadLetterHeader.sourceOffset]: '17',
      });
    });

    it('cuts very long error messages', () => {
      const long = buildDeadLetterMessage(
        { topic: 't', partition: 0, message },
        { reason: 'handler-failed', error: 'x'.repeat(10_000), attempts: 1 },
      );
      expect(String(long.headers?.[DeadLetterHeader.error])).to.have.length(MAX_ERROR_HEADER_LENGTH);
    });
  });
});
