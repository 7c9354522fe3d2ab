/**
 * Can a record outlive its seen mark? A replay from the earliest offset (a consumer-group reset, a new
 * group starting from the beginning) re-delivers every record the topic still holds; a change whose mark
 * has expired is then handled again, possibly after newer changes of the same document.
 *
 * The rule: a record can stay readable for up to retention.ms + segment.ms (deletion removes whole
 * segments, and a segment is only closed after segment.ms) + the broker's deletion-check interval
 * (log.retention.check.interval.ms, 5 minutes by default); compaction or retention.ms = -1 keep records
 * for ever. The seen TTL must be longer than that.
 */
import type { Admin, ConfigResourceTypes } from 'kafkajs';

import type { RetentionFinding } from './errors.js';

/**
 * Kafka's resource type TOPIC (kafkajs `ConfigResourceTypes.TOPIC`). A value import of that enum fails
 * under Node's ESM loader: kafkajs is CommonJS and its export is not statically detectable.
 */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/** The broker's default log.retention.check.interval.ms. */
export const DELETION_CHECK_SLACK_MS = 300_000;

export interface TopicRetention {
  readonly topic: string;
  readonly retentionMs: number;
  readonly segmentMs: number;
  readonly cleanupPolicy: string;
}

export function longestRecordLifetimeMs(topic: TopicRetention): number | 'unlimited' {
  if (topic.cleanupPolicy.split(',').some((policy) => policy.trim() === 'compact')) return 'unlimited';
  if (topic.retentionMs < 0) return 'unlimited';
  return topic.retentionMs + topic.segmentMs + DELETION_CHECK_SLACK_MS;
}

/** The topics whose records can outlive a mark of `expireAfterSeconds`. Pure. */
export function findRetentionBeyondTtl(
  expireAfterSeconds: number,
  topics: readonly TopicRetention[],
): RetentionFinding[] {
  return topics.flatMap((topic) => {
    const longestLifetimeMs = longestRecordLifetimeMs(topic);
    if (longestLifetimeMs !== 'unlimited' && longestLifetimeMs <= expireAfterSeconds * 1_000) return [];
    return [{ ...topic, longestLifetimeMs }];
  });
}

/** The smallest TTL (s) that covers every finding, or undefined when a topic keeps records for ever. */
export function minimumSafeTtlSeconds(findings: readonly RetentionFinding[]): number | undefined {
  let longest = 0;
  for (const finding of findings) {
    if (finding.longestLifetimeMs === 'unlimited') return undefined;
    longest = Math.max(longest, finding.longestLifetimeMs);
  }
  return Math.ceil(longest / 1_000);
}

/** retention.ms, segment.ms and cleanup.policy of `topics`, as the broker resolves them. */
export async function describeRetention(admin: Admin, topics: readonly string[]): Promise<TopicRetention[]> {
  if (topics.length === 0) return [];
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({
      type: TOPIC_RESOURCE,
      name,
      configNames: ['retention.ms', 'segment.ms', 'cleanup.policy'],
    })),
  });
  return resources.map((resource) => {
    const value = (name: string): string | undefined =>
      resource.configEntries.find((entry) => entry.configName === name)?.configValue ?? undefined;
    return {
      topic: resource.resourceName,
      retentionMs: Number(value('retention.ms') ?? 604_800_000),
      segmentMs: Number(value('segment.ms') ?? 604_800_000),
      cleanupPolicy: value('cleanup.policy') ?? 'delete',
    };
  });
}
