/**
 * How the sink turns records into produce calls it can account for exactly.
 *
 * Invariant: every kafkajs `sendBatch` call carries records for partitions of ONE leader, with each
 * partition chosen by the relay (murmur2 of the partition key modulo the partition count). The pinned
 * partitioner re-checks the producer's own metadata right before kafkajs builds the request and aborts
 * the whole call, before anything is sent, if a partition's leader or count differs from the plan.
 * So kafkajs never spreads one call over several brokers, and the path where its retry skips a broker
 * that already answered (kafkajs issue #1303: records never sent yet reported as sent) cannot occur;
 * a call either fails as a whole (nothing in it counts as acknowledged; re-sending the same batches
 * with the same sequence numbers is deduplicated by the broker) or its response is checked partition
 * by partition (`settle`).
 */
import type { ICustomPartitioner, Message, PartitionMetadata, RecordMetadata } from 'kafkajs';
import { ProduceNotAllowedError } from './errors.js';

/** Where one record goes, as planned by the sink. */
export interface Route {
  partition: number;
  partitionCount: number;
  leader: number;
}

/** Thrown by the pinned partitioner: the producer's metadata no longer matches the plan. */
export class RouteChangedError extends Error {
  /** kafkajs bails at once on a non-retriable error: nothing of the call is sent. */
  readonly retriable = false;
  constructor(
    readonly topic: string,
    readonly reason: 'leader' | 'partition-count',
  ) {
    super(`the ${reason === 'leader' ? 'leader of a partition' : 'partition count'} of ${topic} changed`);
    this.name = 'RouteChangedError';
  }
}

export function topicPartition(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Groups records (already routed) into calls: one per leader, or one per partition when isolated. */
export function planCalls<T>(
  items: readonly T[],
  topicOf: (item: T) => string,
  routeOf: (item: T) => Route,
  isolated: (item: T) => boolean,
): T[][] {
  const calls = new Map<string, T[]>();
  for (const item of items) {
    const route = routeOf(item);
    const key = isolated(item) ? `p:${topicPartition(topicOf(item), route.partition)}` : `l:${route.leader}`;
    const call = calls.get(key);
    if (call) call.push(item);
    else calls.set(key, [item]);
  }
  return [...calls.values()];
}

/**
 * Which topic-partitions of a call Kafka acknowledged: those its response names with error code 0.
 * Anything else (missing from the response, or answered with an error) is not acknowledged.
 */
export function acknowledgedPartitions(response: readonly RecordMetadata[]): Set<string> {
  const acked = new Set<string>();
  for (const r of response) if (r.errorCode === 0) acked.add(topicPartition(r.topicName, r.partition));
  return acked;
}

/**
 * The partitioner of the relay's producer: returns the partition the sink planned for a message, after
 * checking the plan against the metadata kafkajs is about to use, and the ownership guard.
 */
export function pinnedPartitioner(
  routes: WeakMap<Message, Route>,
  hooks: { observe(topic: string, partitions: PartitionMetadata[]): void; mayProduce(): boolean },
): ICustomPartitioner {
  return () => {
    // kafkajs passes the same metadata array for every message of a topic in one call: look once.
    const observed = new WeakSet<PartitionMetadata[]>();
    return ({ topic, partitionMetadata, message }) => {
      const route = routes.get(message);
      if (!route) throw new Error(`bug: a message for ${topic} was sent without a planned partition`);
      if (!observed.has(partitionMetadata)) {
        observed.add(partitionMetadata);
        hooks.observe(topic, partitionMetadata);
      }
      if (partitionMetadata.length !== route.partitionCount)
        throw new RouteChangedError(topic, 'partition-count');
      const leader = partitionMetadata.find((p) => p.partitionId === route.partition)?.leader;
      if (leader !== route.leader) throw new RouteChangedError(topic, 'leader');
      // The latest point the relay reaches before kafkajs sends: only its broker lookup and the
      // per-broker lock come between this check and the request.
      if (!hooks.mayProduce()) throw new ProduceNotAllowedError();
      return route.partition;
    };
  };
}
