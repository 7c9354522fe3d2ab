import { BSON, type Document } from 'mongodb';

/**
 * RELAY_PIPELINE: a JSON array of aggregation stages, read as Extended JSON so that dates and
 * ObjectIds can be matched. Stages that would break the change stream contract are refused here,
 * before anything connects.
 */
const FORBIDDEN_STAGES = new Set([
  '$out',
  '$merge',
  '$group',
  '$sort',
  '$limit',
  '$skip',
  '$lookup',
  '$changeStream',
]);

export function parsePipeline(value: unknown): Document[] {
  let stages: unknown = value;
  if (typeof value === 'string') {
    try {
      stages = BSON.EJSON.parse(value === '' ? '[]' : value, { relaxed: false });
    } catch (e) {
      throw new Error(`must be a JSON array of aggregation stages (${(e as Error).message})`);
    }
  }
  if (!Array.isArray(stages)) throw new Error('must be a JSON array of aggregation stages');
  stages.forEach((stage: unknown, i) => {
    if (typeof stage !== 'object' || stage === null || Array.isArray(stage)) {
      throw new Error(`stage ${i} must be an object like {"$match": {...}}`);
    }
    const keys = Object.keys(stage);
    const name = keys[0];
    if (keys.length !== 1 || name === undefined || !name.startsWith('$')) {
      throw new Error(`stage ${i} must have exactly one key naming the stage, like "$match"`);
    }
    if (FORBIDDEN_STAGES.has(name))
      throw new Error(`stage ${i}: ${name} is not allowed in a change stream pipeline`);
  });
  return stages as Document[];
}
