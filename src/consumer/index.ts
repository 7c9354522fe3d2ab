/**
 * `mongo-kafka-relay/consumer`: consume the relay's topics with dedupe on the change ID per consumer
 * group, per-partition order, classified retries, dead letters and their re-drive, health and metrics.
 * See docs/consumer.md. Everything exported here is the public API; nothing else is a semver promise.
 */
export {
  ChangeConsumer,
  createChangeConsumer,
  type ConsumerHealth,
  type ConsumerStatus,
} from './changeConsumer.js';
export type {
  ChangeConsumerOptions,
  CommitOptions,
  CommonConsumerOptions,
  DeadLetterOptions,
  HandlerChoice,
  HandlerRetryOptions,
  IdempotentHandlerConsumerOptions,
  MongoConnection,
  OutageRetryOptions,
  RetentionCheck,
  SeenOptions,
  TransactionalConsumerOptions,
} from './options.js';
export type {
  BatchContext,
  ChangeBatchHandler,
  ChangeBatchItem,
  ChangeEvent,
  ChangeHandler,
  ConsumerMode,
  DeadLetterReason,
  HandlerContext,
  RecordMetadata,
  RecordOutcome,
  TransactionalBatchContext,
  TransactionalHandlerContext,
} from './types.js';
export {
  ChangeConsumerConfigError,
  ConsumerCrashedError,
  DeadLetterTopicMissingError,
  HandlerTimeoutError,
  PermanentHandlerError,
  RetentionExceedsTtlError,
  RetryableHandlerError,
  TransactionsUnsupportedError,
  TtlIndexMismatchError,
  TtlIndexUpdateError,
  type RetentionFinding,
} from './errors.js';
export type { ErrorClassifier, ErrorKind } from './retryPolicy.js';
export { ConsumerMetricName } from './metrics.js';
export type { SeenDocument, SeenOutcome, TtlIndexOutcome, TtlMismatchPolicy } from './seenStore.js';
export { DeadLetterHeader, type DeadLetterTopicFor } from './deadLetter.js';
export type { BlockedPartition } from './partitionRunner.js';
export { redriveDeadLetters, type RedriveOptions, type RedriveReport } from './redrive.js';
export type { ConsumerLogger } from './logging.js';
export { RecordHeader } from '../contract/record.js';
