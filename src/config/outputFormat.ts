/**
 * What RELAY_OUTPUT_FORMAT needs from the other settings. Debezium names its topics
 * `<topic.prefix>.<db>.<coll>` and writes that prefix into every record (`source.name`, a header), so the
 * relay takes it from KAFKA_TOPIC and refuses a template of another shape rather than invent one.
 */
/** RELAY_OUTPUT_FORMAT's values; src/contract/record.ts says what each writes. */
export const OUTPUT_FORMATS = ['relay', 'debezium', 'mongo-kafka-connect'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const DEBEZIUM_TEMPLATE = /^(.+)\.\{db\}\.\{coll\}$/;

/** The Debezium logical name a topic template gives, or null when it is not `<prefix>.{db}.{coll}`. */
export function debeziumTopicPrefix(template: string): string | null {
  return DEBEZIUM_TEMPLATE.exec(template)?.[1] ?? null;
}
