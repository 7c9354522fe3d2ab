/**
 * Which topic a change goes to: KAFKA_TOPIC with {db} and {coll} replaced. Namespace parts are made
 * topic-safe (Kafka allows only [A-Za-z0-9._-]); events without a collection (dropDatabase) use
 * "_database", and a collection stream's invalidate (which has no ns) goes to that collection's topic.
 */
import type { StreamScope } from '../config/watchTargets.js';

export interface Namespace {
  db: string;
  coll?: string;
}

export class TopicRouter {
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly template: string,
    private readonly scope: StreamScope,
  ) {}

  topicFor(ns: Namespace | undefined): string {
    const resolved = ns ?? this.fallbackNamespace();
    const cacheKey = `${resolved.db}\u0000${resolved.coll ?? ''}`;
    let topic = this.cache.get(cacheKey);
    if (topic === undefined) {
      topic = this.template
        .replaceAll('{db}', topicSafe(resolved.db))
        .replaceAll('{coll}', topicSafe(resolved.coll ?? '_database'))
        .slice(0, 249);
      this.cache.set(cacheKey, topic);
    }
    return topic;
  }

  private fallbackNamespace(): Namespace {
    if (this.scope.level === 'collection') return { db: this.scope.db, coll: this.scope.coll };
    if (this.scope.level === 'database') return { db: this.scope.db };
    return { db: '_deployment' };
  }
}

function topicSafe(part: string): string {
  return part.replace(/[^A-Za-z0-9._-]/g, '_');
}
