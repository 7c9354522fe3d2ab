/**
 * What the sink rejects a publish with, each telling the caller what kind of end it is: a stop
 * (the record stays after the checkpoint), Kafka refusing for good (exit 6), or this relay no longer
 * being allowed to produce (lost ownership, exit 5).
 */

export class ShutdownError extends Error {
  constructor() {
    super('the relay stopped before Kafka acknowledged this record');
    this.name = 'ShutdownError';
  }
}

/** What the relay was doing when Kafka refused, which decides the permission to name. */
export type KafkaOperation =
  'describe' | 'create' | 'produce' | 'init-producer' | 'connect' | 'read-positions';

const PERMISSION: Record<KafkaOperation, string> = {
  describe: 'DESCRIBE on the topic',
  create:
    'CREATE on the topic (or the cluster); or create the topic beforehand and set KAFKA_CREATE_TOPICS=false',
  produce: 'WRITE (and DESCRIBE) on the topic',
  'init-producer': 'WRITE on the topic (Kafka 3.0+), or IDEMPOTENT_WRITE on the cluster for older brokers',
  connect: 'valid credentials (KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)',
  'read-positions':
    'READ (and DESCRIBE) on the positions topic and READ on the consumer groups prefixed "mongo-kafka-relay.positions-reader."',
};

/**
 * Kafka refused in a way that retrying cannot fix (authorization, an invalid topic, an unsupported
 * version). The relay ends with exit code 6; the message names the topic and what is missing.
 */
export class KafkaRefusedError extends Error {
  constructor(
    readonly errorType: string,
    readonly operation: KafkaOperation,
    readonly topic: string | null,
    detail: string,
  ) {
    super(refusalMessage(errorType, operation, topic, detail));
    this.name = 'KafkaRefusedError';
  }
}

function refusalMessage(
  type: string,
  operation: KafkaOperation,
  topic: string | null,
  detail: string,
): string {
  const where = topic ? `topic "${topic}"` : 'the cluster';
  const during = `while trying to ${operation.replace('-', ' ')}`;
  if (/AUTHORIZATION_FAILED$/.test(type)) {
    const what =
      type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'
        ? 'WRITE and DESCRIBE on the transactional id (KAFKA_TRANSACTIONAL_ID)'
        : type === 'GROUP_AUTHORIZATION_FAILED'
          ? PERMISSION['read-positions']
          : type === 'CLUSTER_AUTHORIZATION_FAILED' && operation !== 'init-producer'
            ? 'the cluster permission for this request'
            : PERMISSION[operation];
    return `Kafka refused access to ${where} ${during} (${type}): the relay's principal needs ${what}. Grant it (kafka-acls) and restart the relay.`;
  }
  if (type === 'TRANSACTION_COORDINATOR_NOT_FOUND') {
    return (
      `Kafka named no transaction coordinator for the transactional id "${detail}" although it answers ` +
      "everything else: the broker answers so when the relay's principal lacks DESCRIBE on the transactional " +
      'id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which kafkajs reports as "Failed to find group coordinator"). ' +
      'Grant WRITE and DESCRIBE on the transactional id (KAFKA_TRANSACTIONAL_ID) and restart the relay.'
    );
  }
  if (type === 'SASL_AUTHENTICATION_FAILED') {
    return `Kafka refused the relay's credentials (${type}: ${detail}): check ${PERMISSION.connect}.`;
  }
  if (type === 'INVALID_TOPIC_EXCEPTION') {
    return `Kafka refused ${where} as an invalid topic name ${during} (${type}): check KAFKA_TOPIC and KAFKA_DEAD_LETTER_TOPIC (letters, digits, ".", "_", "-"; at most 249 characters).`;
  }
  if (type === 'UNSUPPORTED_VERSION' || type === 'UNSUPPORTED_FOR_MESSAGE_FORMAT') {
    return `Kafka does not support a request the relay needs ${during} on ${where} (${type}): the broker is too old or too new for kafkajs 2.2.4; see scripts/kafka/README.md for the versions tested.`;
  }
  if (type === 'UNSUPPORTED_COMPRESSION_TYPE') {
    return `Kafka refused the compression codec for ${where} (${type}): choose another KAFKA_COMPRESSION.`;
  }
  return `Kafka refused ${during} on ${where} (${type}: ${detail}).`;
}

/**
 * The ownership guard said no right before a produce request: this relay may no longer publish
 * (its lease expired, e.g. after a long pause). The relay ends with the lease exit code 5.
 */
export class ProduceNotAllowedError extends Error {
  readonly retriable = false;
  constructor() {
    super(
      'this relay no longer owns the checkpoint (its lease expired, e.g. after a long pause); ' +
        'nothing more is sent to Kafka, the new owner publishes from the checkpoint',
    );
    this.name = 'ProduceNotAllowedError';
  }
}

/**
 * RELAY_DELIVERY=exactly-once: the broker fenced this relay's transactional producer. Its open
 * transaction is aborted by the broker, so nothing of it becomes visible to read_committed consumers;
 * the relay ends with exit code 8 and, restarted, resumes from the last committed position.
 */
export class ProducerFencedError extends Error {
  constructor(
    readonly transactionalId: string,
    readonly errorType: string,
  ) {
    super(
      `Kafka fenced this relay's transactional producer "${transactionalId}" (${errorType}): another ` +
        'producer with the same transactional id started (two relays with the same KAFKA_TRANSACTIONAL_ID ' +
        'or checkpoint id). Its uncommitted records are aborted; a restarted relay resumes from the last ' +
        'committed position',
    );
    this.name = 'ProducerFencedError';
  }
}
