/**
 * What the watched MongoDB supports that the relay adapts to, detected once per process by asking the
 * server (the version says what should work; a probe says what does — on mongos too).
 */
import { MongoServerError, type MongoClient } from 'mongodb';
import type { StreamScope } from '../config/watchTargets.js';

export const SPLIT_STAGE = { $changeStreamSplitLargeEvent: {} } as const;

export interface Support {
  supported: boolean;
  reason: string;
}

/** `$changeStreamSplitLargeEvent` exists from MongoDB 7.0 and 6.0.9 (and 6.3 of the rapid releases). */
export function versionHasSplitStage(version: readonly number[]): boolean {
  const [major = 0, minor = 0, patch = 0] = version;
  if (major !== 6) return major > 6;
  return minor > 0 ? minor >= 3 : patch >= 9;
}

/**
 * Does a change stream on `scope` accept `$changeStreamSplitLargeEvent`? Servers older than the stage
 * are not asked; others are probed with a stream that is opened and closed at once.
 */
export async function detectSplitLargeEvent(client: MongoClient, scope: StreamScope): Promise<Support> {
  let version: number[] | null = null;
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    if (Array.isArray(info.versionArray)) version = (info.versionArray as unknown[]).map(Number);
  } catch {
    // buildInfo may be refused to a restricted user; the probe alone decides then.
  }
  if (version && !versionHasSplitStage(version)) {
    return { supported: false, reason: `MongoDB ${version.slice(0, 3).join('.')} predates it (7.0, 6.0.9)` };
  }
  const pipeline = [SPLIT_STAGE];
  const options = { maxAwaitTimeMS: 1 };
  const stream =
    scope.level === 'collection'
      ? client.db(scope.db).collection(scope.coll).watch(pipeline, options)
      : scope.level === 'database'
        ? client.db(scope.db).watch(pipeline, options)
        : client.watch(pipeline, options);
  try {
    await stream.tryNext();
    return { supported: true, reason: 'the server accepted it' };
  } catch (error) {
    const refused =
      error instanceof MongoServerError ? `${error.codeName ?? error.code}: ${error.message}` : String(error);
    return { supported: false, reason: `the server refused it (${refused})` };
  } finally {
    await stream.close().catch(() => undefined);
  }
}
