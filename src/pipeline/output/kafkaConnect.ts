/**
 * RELAY_OUTPUT_FORMAT=mongo-kafka-connect: a change as the MongoDB Kafka source connector writes it with
 * its defaults (`output.format.key`/`output.format.value` = json, `output.json.formatter` = DefaultJson,
 * which is the Java driver's strict mode, and StringConverter for key and value, as its documentation
 * configures them):
 *
 *  - key `{"_id": {"_data": "<resume token>"}}`: the change event's `_id`, so the key is unique per change
 *    (the connector's records are not keyed by document);
 *  - value the whole change event, fields in the server's order, as strict Extended JSON text.
 *
 * Topics follow KAFKA_TOPIC (the connector's default `<topic.prefix>.<db>.<coll>` is `prefix.{db}.{coll}`).
 * Partitioning stays the relay's (RELAY_PARTITION_BY): the connector's keys spread one document's changes
 * over all partitions, the relay's default keeps them in one, a difference no consumer can rely on.
 */
import { writeJavaJson } from './javaJson.js';

const DEFAULT_JSON = { mode: 'strict', compact: false } as const;

export function kafkaConnectKey(changeId: unknown): string {
  return writeJavaJson({ _id: changeId }, DEFAULT_JSON);
}

export function kafkaConnectValue(event: unknown): string {
  return writeJavaJson(event, DEFAULT_JSON);
}
