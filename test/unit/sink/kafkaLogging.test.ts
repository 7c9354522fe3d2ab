/** What the relay makes of kafkajs' log entries: retried conditions are not errors for an operator. */
import { expect } from 'chai';
import { logLevel, type LogEntry } from 'kafkajs';
import { logKafkaEntry } from '../../../src/sink/kafkaClient.js';

function levelOf(level: logLevel, message: string, extra: Record<string, unknown> = {}): string[] {
  const seen: string[] = [];
  const logger = {
    debug: () => void seen.push('debug'),
    warn: () => void seen.push('warn'),
    error: () => void seen.push('error'),
  };
  const entry = {
    namespace: 'Producer',
    level,
    label: 'ERROR',
    log: { timestamp: '', logger: 'kafkajs', message, ...extra },
  };
  logKafkaEntry(logger, entry as LogEntry);
  return seen;
}

describe('kafkajs log entries in the relay log', () => {
  it("logs a retried CONCURRENT_TRANSACTIONS (a commit's markers still being written) at debug, not error", () => {
    const message =
      'Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing';
    expect(levelOf(logLevel.ERROR, message, { retryCount: 0, retryTime: 81 })).to.deep.equal(['debug']);
  });

  it('keeps other failed sends, and one no longer retried, at error', () => {
    expect(
      levelOf(logLevel.ERROR, 'Failed to send messages: Broker not available', { retryCount: 0 }),
    ).to.deep.equal(['error']);
    expect(
      levelOf(
        logLevel.ERROR,
        'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing',
      ),
    ).to.deep.equal(['error']);
  });

  it('logs error responses that kafkajs retries or throws at debug (the relay logs what is not recovered)', () => {
    expect(levelOf(logLevel.ERROR, 'Response Produce(key: 0, version: 7)')).to.deep.equal(['debug']);
    expect(levelOf(logLevel.WARN, 'something')).to.deep.equal(['warn']);
  });
});
