import { expect } from 'chai';
import { KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { classify, errorTypes } from '../../../src/sink/kafkaErrors.js';
import { KafkaRefusedError } from '../../../src/sink/errors.js';

const protocol = (type: string, code: number, retriable = false): Error =>
  new KafkaJSProtocolError({ type, code, retriable, message: type } as never);

describe('kafka error classification', () => {
  it('finds the broker error inside kafkajs wrappers', () => {
    const inner = protocol('OUT_OF_ORDER_SEQUENCE_NUMBER', 45);
    const wrapped = Object.assign(new KafkaJSNonRetriableError(inner), { cause: inner });
    expect(classify(wrapped)).to.deep.equal({ kind: 'producer-state', type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
  });

  for (const type of ['UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']) {
    it(`treats ${type} as lost producer state`, () =>
      expect(classify(protocol(type, 1)).kind).to.equal('producer-state'));
  }

  it('recognises PRODUCER_FENCED (90), which kafkajs 2.2.4 reports as an unknown code', () => {
    const e = new KafkaJSProtocolError({
      type: 'KAFKAJS_UNKNOWN_ERROR_CODE',
      code: -99,
      retriable: false,
      message: 'Unknown error code 90',
    } as never);
    expect(classify(e)).to.deep.equal({ kind: 'producer-state', type: 'PRODUCER_FENCED' });
  });

  for (const type of [
    'TOPIC_AUTHORIZATION_FAILED',
    'CLUSTER_AUTHORIZATION_FAILED',
    'INVALID_TOPIC_EXCEPTION',
    'UNSUPPORTED_VERSION',
  ]) {
    it(`treats ${type} as a refusal retrying cannot fix`, () =>
      expect(classify(protocol(type, 1)).kind).to.equal('refused'));
  }

  it('treats leader moves, timeouts and too few replicas as retriable, after kafkajs gave up', () => {
    for (const type of ['NOT_LEADER_FOR_PARTITION', 'REQUEST_TIMED_OUT', 'NOT_ENOUGH_REPLICAS']) {
      const inner = protocol(type, 1, true);
      const wrapped = new KafkaJSNumberOfRetriesExceeded(inner, {
        retryCount: 2,
        retryTime: 100,
        cause: inner,
      } as never);
      expect(classify(wrapped).kind, type).to.equal('retriable');
    }
    expect(classify(new Error('Connection error: ECONNREFUSED')).kind).to.equal('retriable');
  });

  it('finds too-large refusals inside aggregates', () => {
    const aggregate = Object.assign(new Error('many'), {
      errors: [new Error('x'), protocol('RECORD_LIST_TOO_LARGE', 18)],
    });
    expect(classify(aggregate).kind).to.equal('too-large');
    expect(errorTypes(aggregate)).to.include('RECORD_LIST_TOO_LARGE');
  });

  describe('the refusal message', () => {
    it('names the topic and the missing permission for a refused produce', () => {
      const e = new KafkaRefusedError('TOPIC_AUTHORIZATION_FAILED', 'produce', 'mongo.shop.orders', 'denied');
      expect(e.message).to.contain('"mongo.shop.orders"').and.to.contain('WRITE');
    });
    it('names DESCRIBE for a refused metadata lookup and CREATE for a refused creation', () => {
      expect(new KafkaRefusedError('TOPIC_AUTHORIZATION_FAILED', 'describe', 't', '').message).to.contain(
        'DESCRIBE',
      );
      expect(new KafkaRefusedError('TOPIC_AUTHORIZATION_FAILED', 'create', 't', '').message)
        .to.contain('CREATE')
        .and.to.contain('KAFKA_CREATE_TOPICS=false');
    });
  });
});
