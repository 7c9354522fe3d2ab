/**
 * Where each held record goes in the next round: its partition (Kafka's murmur2 of its partition key,
 * as the Java client's default partitioner computes it, over the topic's current partition count) and
 * that partition's leader, and the produce call's messages pinned to that plan.
 */
import type { Message, TopicMessages } from 'kafkajs';
import { partitionFor } from '../pipeline/murmur2.js';
import type { PendingRecord } from './pendingRecord.js';
import { topicPartition, type Route } from './produceRequests.js';
import type { TopicDirectory } from './topicDirectory.js';

/** Plan each record's partition and leader; records without a leader right now wait a round. */
export function routeRecords(
  pending: PendingRecord[],
  directory: Pick<TopicDirectory, 'partitionCount' | 'leaderOf' | 'markStale'>,
): { sendable: PendingRecord[]; waiting: PendingRecord[] } {
  const sendable: PendingRecord[] = [];
  const waiting: PendingRecord[] = [];
  const firstOfPartition = new Set<string>();
  const blocked = new Set<string>();
  for (const p of pending) {
    const topic = p.record.topic;
    const count = directory.partitionCount(topic);
    if (!p.route || p.route.partitionCount !== count) {
      p.route = { partition: partitionFor(p.record.partitionKey, count), partitionCount: count, leader: -1 };
    }
    p.route.leader = directory.leaderOf(topic, p.route.partition);
    const tp = topicPartition(topic, p.route.partition);
    // A partition's records leave in order: once one of them waits, the later ones wait too.
    if (blocked.has(tp) || p.route.leader < 0 || (p.isolate === 'record' && firstOfPartition.has(tp))) {
      if (p.route.leader < 0) directory.markStale(topic);
      blocked.add(tp);
      waiting.push(p);
      continue;
    }
    firstOfPartition.add(tp);
    sendable.push(p);
  }
  return { sendable, waiting };
}

/**
 * The messages of one call, by topic, each remembered with its route so that the pinned partitioner
 * (produceRequests.ts) can check the plan still holds when kafkajs partitions it.
 */
export function toTopicMessages(
  call: PendingRecord[],
  routes: WeakMap<Message, Route>,
  eventTime: boolean,
): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const p of call) {
    const { record } = p;
    const message: Message = {
      key: record.key,
      value: record.value,
      headers: record.headers,
      partition: p.route!.partition,
    };
    if (eventTime && record.eventTimeMs !== undefined) message.timestamp = String(record.eventTimeMs);
    routes.set(message, p.route!);
    const list = byTopic.get(record.topic);
    if (list) list.push(message);
    else byTopic.set(record.topic, [message]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
