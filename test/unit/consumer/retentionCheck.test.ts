import { expect } from 'chai';

import {
  DELETION_CHECK_SLACK_MS,
  findRetentionBeyondTtl,
  longestRecordLifetimeMs,
  minimumSafeTtlSeconds,
} from '../../../src/consumer/retentionCheck.js';

describe('consumer/retentionCheck', () => {
  const day = 86_400_000;
  const kafkaDefaults = { topic: 't', retentionMs: 7 * day, segmentMs: 7 * day, cleanupPolicy: 'delete' };

  describe('longestRecordLifetimeMs', () => {
    it('is retention.ms + segment.ms + the deletion check interval (a segment is deleted whole, once closed)', () => {
      expect(longestRecordLifetimeMs(kafkaDefaults)).to.equal(14 * day + DELETION_CHECK_SLACK_MS);
    });

    it('is unlimited with retention.ms = -1 or compaction', () => {
      expect(longestRecordLifetimeMs({ ...kafkaDefaults, retentionMs: -1 })).to.equal('unlimited');
      expect(longestRecordLifetimeMs({ ...kafkaDefaults, cleanupPolicy: 'compact' })).to.equal('unlimited');
      expect(longestRecordLifetimeMs({ ...kafkaDefaults, cleanupPolicy: 'compact,delete' })).to.equal(
        'unlimited',
      );
    });
  });

  describe('findRetentionBeyondTtl', () => {
    it("finds nothing for Kafka's default topic settings and the default TTL of 15 days", () => {
      expect(findRetentionBeyondTtl(1_296_000, [kafkaDefaults])).to.deep.equal([]);
    });

    it('finds the topics whose records can outlive the marks', () => {
      const findings = findRetentionBeyondTtl(604_800, [
        kafkaDefaults,
        { ...kafkaDefaults, topic: 'short', retentionMs: day, segmentMs: day },
        { ...kafkaDefaults, topic: 'forever', retentionMs: -1 },
      ]);
      expect(findings.map((f) => [f.topic, f.longestLifetimeMs])).to.deep.equal([
        ['t', 14 * day + DELETION_CHECK_SLACK_MS],
        ['forever', 'unlimited'],
      ]);
    });
  });

  describe('minimumSafeTtlSeconds', () => {
    it('is the longest lifetime in seconds, rounded up, or undefined when a topic keeps records for ever', () => {
      const finite = findRetentionBeyondTtl(1, [kafkaDefaults]);
      expect(minimumSafeTtlSeconds(finite)).to.equal(14 * 86_400 + 300);
      expect(
        minimumSafeTtlSeconds(findRetentionBeyondTtl(1, [{ ...kafkaDefaults, retentionMs: -1 }])),
      ).to.equal(undefined);
    });
  });
});
