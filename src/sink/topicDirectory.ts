/**
 * What the sink knows about each topic it publishes to: its partition count and each partition's
 * leader. Invariants: a topic is looked up (Metadata) before it is ever created, and CreateTopics is
 * only sent for a topic the lookup said does not exist, and only with KAFKA_CREATE_TOPICS=true — so a
 * principal with only WRITE and DESCRIBE works. A partition count that changes while the topic is in
 * use is reported once per change (log + callback), never silently.
 */
import type { Admin, PartitionMetadata } from 'kafkajs';
import type { Logger } from 'pino';
import { KafkaRefusedError } from './errors.js';
import { classify, rootMessage } from './kafkaErrors.js';

/** kafkajs' ConfigResourceTypes.TOPIC (its enum is not exported as a value in the ESM typings). */
const TOPIC_RESOURCE = 2;

export interface TopicCreation {
  partitions: number;
  replicationFactor: number;
}

/** Topic configs a topic should have (none: the broker's defaults). */
export type TopicConfigFor = (topic: string) => Readonly<Record<string, string>>;

/**
 * RELAY_KEY=document: topics the relay creates are state topics, compacted, so they keep each document's
 * latest record (see README, "State topics"). Not the dead-letter topic: its records keep their event's
 * key, and compaction would drop all but one dead letter per document.
 */
export function stateTopicConfig(deadLetterTopic: string): TopicConfigFor {
  const none: Record<string, string> = {};
  const compact: Record<string, string> = { 'cleanup.policy': 'compact' };
  return (topic) => (topic === deadLetterTopic ? none : compact);
}

export interface TopicDirectoryOptions {
  /** null: never create topics (KAFKA_CREATE_TOPICS=false). */
  create: TopicCreation | null;
  /**
   * Configs the relay's topics should have: topics it creates get them; for topics that exist, a
   * difference is logged as a warning once per topic (best effort: without DESCRIBE_CONFIGS nothing is
   * said).
   */
  configFor?: TopicConfigFor;
  logger: Logger;
  onPartitionCountChange?: (topic: string, from: number, to: number) => void;
}

interface TopicInfo {
  partitionCount: number;
  /** partition id -> leader node id (-1: no leader right now). */
  leaders: Map<number, number>;
  stale: boolean;
}

/** The topic does not exist and the relay may not create it: retried, and reported while it lasts. */
export class TopicMissingError extends Error {
  readonly retriable = true;
  constructor(readonly topic: string) {
    super(
      `topic "${topic}" does not exist and KAFKA_CREATE_TOPICS=false: create it (the relay waits and retries)`,
    );
    this.name = 'TopicMissingError';
  }
}

export class TopicDirectory {
  private readonly topics = new Map<string, TopicInfo>();
  private readonly configChecked = new Set<string>();

  constructor(
    private readonly admin: Admin,
    private readonly options: TopicDirectoryOptions,
  ) {}

  /** Look up (and, if allowed, create) every topic not known yet or marked stale. */
  async ensure(topics: Iterable<string>): Promise<void> {
    for (const topic of new Set(topics)) {
      const known = this.topics.get(topic);
      if (known && !known.stale) continue;
      await this.lookupOrCreate(topic);
    }
  }

  isKnown(topic: string): boolean {
    return this.topics.has(topic);
  }

  partitionCount(topic: string): number {
    const info = this.topics.get(topic);
    if (!info) throw new Error(`topic ${topic} was not looked up`);
    return info.partitionCount;
  }

  /** The leader the sink expects for a partition; -1 when none is known (election in progress). */
  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.leaders.get(partition) ?? -1;
  }

  /** Ask the cluster again before the next send (after a leader move, a missing topic, ...). */
  markStale(topic: string): void {
    const info = this.topics.get(topic);
    if (info) info.stale = true;
  }

  /** The producer's own view of a topic, seen by the partitioner right before a request is built. */
  observe(topic: string, partitions: readonly PartitionMetadata[]): void {
    this.update(topic, partitions);
  }

  private async lookupOrCreate(topic: string): Promise<void> {
    const found = await this.lookup(topic);
    if (found) {
      await this.checkConfig(topic);
      return this.update(topic, found);
    }
    const create = this.options.create;
    if (!create) throw new TopicMissingError(topic);
    const configs = this.options.configFor?.(topic) ?? {};
    this.configChecked.add(topic);
    const configEntries = Object.entries(configs).map(([name, value]) => ({ name, value }));
    try {
      await this.admin.createTopics({
        topics: [
          {
            topic,
            numPartitions: create.partitions,
            replicationFactor: create.replicationFactor,
            ...(configEntries.length > 0 ? { configEntries } : {}),
          },
        ],
        // kafkajs' own wait asks one broker and fails with UNKNOWN_TOPIC_OR_PARTITION when the new
        // topic's metadata has not reached that broker yet (common on a multi-broker cluster): wait below.
        waitForLeaders: false,
      });
      this.options.logger.info(
        { topic, partitions: create.partitions, replicationFactor: create.replicationFactor, configs },
        'topic created',
      );
    } catch (error) {
      throw refusedOr(error, 'create', topic);
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      const created = await this.lookup(topic).catch((error: unknown) => {
        if (error instanceof KafkaRefusedError) throw error;
        return null; // e.g. LEADER_NOT_AVAILABLE while the first leaders are elected
      });
      if (created && created.every((p) => p.leader >= 0)) return this.update(topic, created);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`topic "${topic}" was created but its partitions have no leader yet; retrying`);
  }

  /** Warns once if an existing topic's configs differ from what the relay would create it with. */
  private async checkConfig(topic: string): Promise<void> {
    if (this.configChecked.has(topic)) return;
    this.configChecked.add(topic);
    const expected = this.options.configFor?.(topic) ?? {};
    const names = Object.keys(expected);
    if (names.length === 0) return;
    try {
      const { resources } = await this.admin.describeConfigs({
        resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: names }],
        includeSynonyms: false,
      });
      const actual = new Map(resources[0]?.configEntries.map((e) => [e.configName, e.configValue]) ?? []);
      const differing = names.filter((n) => actual.get(n) !== expected[n]);
      if (differing.length === 0) return;
      this.options.logger.warn(
        {
          topic,
          expected: Object.fromEntries(differing.map((n) => [n, expected[n]])),
          actual: Object.fromEntries(differing.map((n) => [n, actual.get(n) ?? null])),
        },
        'an existing topic lacks the configs the relay would create it with (with RELAY_KEY=document: ' +
          'cleanup.policy=compact, or retention deletes the only record of documents that did not change); ' +
          'alter the topic (kafka-configs.sh --alter --entity-type topics --add-config cleanup.policy=compact)',
      );
    } catch (error) {
      this.options.logger.debug(
        { topic, err: rootMessage(error) },
        "could not read the topic's configs (DESCRIBE_CONFIGS); not checked",
      );
    }
  }

  /** The topic's partitions, or null if it does not exist. */
  private async lookup(topic: string): Promise<PartitionMetadata[] | null> {
    try {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics.find((t) => t.name === topic)?.partitions ?? [];
      return partitions.length > 0 ? partitions : null;
    } catch (error) {
      if (classify(error).type === 'UNKNOWN_TOPIC_OR_PARTITION') return null;
      throw refusedOr(error, 'describe', topic);
    }
  }

  private update(topic: string, partitions: readonly PartitionMetadata[]): void {
    const before = this.topics.get(topic);
    const count = partitions.length;
    if (before && before.partitionCount !== count) {
      this.options.logger.warn(
        { topic, partitionsBefore: before.partitionCount, partitionsNow: count },
        'the partition count of a topic in use changed: documents now hash to other partitions, so a ' +
          "consumer may see a document's newer change before an older one still unread in its former " +
          'partition (see README, "Changing the partitions of a topic")',
      );
      this.options.onPartitionCountChange?.(topic, before.partitionCount, count);
    }
    const leaders = new Map<number, number>();
    for (const p of partitions) leaders.set(p.partitionId, p.leader);
    this.topics.set(topic, { partitionCount: count, leaders, stale: false });
  }
}

/** Authorization and invalid-name refusals end the relay; anything else is for the caller to retry. */
export function refusedOr(
  error: unknown,
  operation: 'describe' | 'create' | 'produce',
  topic: string,
): Error {
  const { kind, type } = classify(error);
  if (kind === 'refused') return new KafkaRefusedError(type, operation, topic, rootMessage(error));
  return error instanceof Error ? error : new Error(String(error));
}
