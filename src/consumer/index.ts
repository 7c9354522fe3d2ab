/**
 * `mongo-kafka-relay/consumer`: consume the relay's topics with dedupe on the change ID, per-partition
 * order, retries, dead letters and metrics. See docs/consumer.md.
 */
export { ChangeConsumer, createChangeConsumer } from './change-consumer.js';
export type {
  ChangeConsumerOptions,
  CommonConsumerOptions,
  DeadLetterOptions,
  HandlerRetryOptions,
  IdempotentHandlerConsumerOptions,
  MongoConnection,
  OutageRetryOptions,
  SeenOptions,
  TransactionalConsumerOptions,
} from './options.js';
export { DEFAULTS as CONSUMER_DEFAULTS } from './options.js';
export type {
  ChangeEvent,
  ChangeHandler,
  ConsumerMode,
  DeadLetterReason,
  HandlerContext,
  RecordMetadata,
  RecordOutcome,
  TransactionalHandlerContext,
} from './types.js';
export {
  ChangeConsumerConfigError,
  PermanentHandlerError,
  TransactionsUnsupportedError,
  TtlIndexMismatchError,
  TtlIndexUpdateError,
} from './errors.js';
export { ConsumerMetricName } from './metrics.js';
export {
  DEFAULT_TTL_INDEX_NAME,
  type SeenDocument,
  type TtlIndexOutcome,
  type TtlMismatchPolicy,
} from './seen-store.js';
export { buildDeadLetterMessage, defaultDeadLetterTopic, type DeadLetterTopicFor } from './dead-letter.js';
export { decodeRecord, parseChangeEvent, changeIdOf, type DecodedRecord } from './decode.js';
export { backoffDelay, backoffSchedule, type BackoffPolicy } from './backoff.js';
export type { ConsumerLogger } from './logging.js';
export { DeadLetterHeader, RecordHeader } from '../contract/record.js';
