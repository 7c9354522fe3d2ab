import { expect } from 'chai';
import type { Message, PartitionMetadata, RecordMetadata } from 'kafkajs';
import {
  RouteChangedError,
  acknowledgedPartitions,
  pinnedPartitioner,
  planCalls,
  topicPartition,
  type Route,
} from '../../../src/sink/produceRequests.js';
import { ProduceNotAllowedError } from '../../../src/sink/errors.js';

const meta = (leaders: number[]): PartitionMetadata[] =>
  leaders.map((leader, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader,
    replicas: [],
    isr: [],
  }));

interface Item {
  topic: string;
  route: Route;
  isolated?: boolean;
}
const item = (topic: string, partition: number, leader: number, isolated = false): Item => ({
  topic,
  route: { partition, partitionCount: 3, leader },
  isolated,
});

describe('produce requests', () => {
  describe('planCalls', () => {
    const plan = (items: Item[]): Item[][] =>
      planCalls(
        items,
        (i) => i.topic,
        (i) => i.route,
        (i) => i.isolated ?? false,
      );

    it('puts the partitions of one leader, across topics, into one call', () => {
      const calls = plan([item('a', 0, 1), item('b', 2, 1), item('a', 1, 2), item('a', 0, 1)]);
      expect(calls.map((c) => c.map((i) => `${i.topic}${i.route.partition}`))).to.deep.equal([
        ['a0', 'b2', 'a0'],
        ['a1'],
      ]);
    });

    it('gives an isolated partition a call of its own, keeping its records in order', () => {
      const first = item('a', 0, 1, true);
      const second = item('a', 0, 1, true);
      const calls = plan([first, item('a', 1, 1), second]);
      expect(calls).to.have.length(2);
      expect(calls[0]).to.deep.equal([first, second]);
    });
  });

  describe('acknowledgedPartitions', () => {
    it('counts only the partitions the response names with error code 0', () => {
      const response: RecordMetadata[] = [
        { topicName: 'a', partition: 0, errorCode: 0 },
        { topicName: 'a', partition: 1, errorCode: 6 },
      ];
      const acked = acknowledgedPartitions(response);
      expect([...acked]).to.deep.equal([topicPartition('a', 0)]);
      expect(acked.has(topicPartition('a', 2)), 'a partition missing from the response').to.equal(false);
    });
  });

  describe('pinnedPartitioner', () => {
    const setup = (mayProduce = true) => {
      const routes = new WeakMap<Message, Route>();
      const observed: string[] = [];
      const partitioner = pinnedPartitioner(routes, {
        observe: (topic, partitions) => observed.push(`${topic}:${partitions.map((p) => p.leader).join('')}`),
        mayProduce: () => mayProduce,
      })();
      return { routes, observed, partitioner };
    };
    const message = (routes: WeakMap<Message, Route>, route: Route): Message => {
      const m: Message = { key: 'k', value: 'v' };
      routes.set(m, route);
      return m;
    };

    it('returns the planned partition while the metadata matches the plan, observing each topic once per call', () => {
      const { routes, observed, partitioner } = setup();
      const partitionMetadata = meta([1, 2, 3]);
      const m1 = message(routes, { partition: 1, partitionCount: 3, leader: 2 });
      const m2 = message(routes, { partition: 1, partitionCount: 3, leader: 2 });
      expect(partitioner({ topic: 't', partitionMetadata, message: m1 })).to.equal(1);
      expect(partitioner({ topic: 't', partitionMetadata, message: m2 })).to.equal(1);
      expect(observed).to.deep.equal(['t:123']);
    });

    it('aborts the call when the leader moved since the plan', () => {
      const { routes, observed, partitioner } = setup();
      const m = message(routes, { partition: 0, partitionCount: 3, leader: 1 });
      expect(() => partitioner({ topic: 't', partitionMetadata: meta([2, 2, 3]), message: m }))
        .to.throw(RouteChangedError)
        .with.property('reason', 'leader');
      expect(observed, 'the new leaders are learned').to.deep.equal(['t:223']);
    });

    it('aborts the call when the partition count changed since the plan', () => {
      const { routes, partitioner } = setup();
      const m = message(routes, { partition: 0, partitionCount: 3, leader: 1 });
      expect(() => partitioner({ topic: 't', partitionMetadata: meta([1, 2, 3, 1]), message: m }))
        .to.throw(RouteChangedError)
        .with.property('reason', 'partition-count');
    });

    it('refuses when the ownership guard says no, before anything is sent', () => {
      const { routes, partitioner } = setup(false);
      const m = message(routes, { partition: 0, partitionCount: 1, leader: 1 });
      expect(() => partitioner({ topic: 't', partitionMetadata: meta([1]), message: m })).to.throw(
        ProduceNotAllowedError,
      );
    });

    it('marks its errors non-retriable so kafkajs gives up the call at once', () => {
      expect(new RouteChangedError('t', 'leader').retriable).to.equal(false);
      expect(new ProduceNotAllowedError().retriable).to.equal(false);
    });
  });
});
