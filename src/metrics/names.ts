/** Every metric name the relay exports, in one place (dashboards and alerts are tested against it). */
export const METRIC_PREFIX = 'mongo_kafka_relay_';

export const MetricName = {
  eventsTotal: 'mongo_kafka_relay_events_total',
  publishLatencySeconds: 'mongo_kafka_relay_publish_latency_seconds',
  sourceLagSeconds: 'mongo_kafka_relay_source_lag_seconds',
  inFlightEvents: 'mongo_kafka_relay_in_flight_events',
  checkpointWritesTotal: 'mongo_kafka_relay_checkpoint_writes_total',
  checkpointWriteFailuresTotal: 'mongo_kafka_relay_checkpoint_write_failures_total',
  checkpointAgeSeconds: 'mongo_kafka_relay_checkpoint_age_seconds',
  deadLetterTotal: 'mongo_kafka_relay_dead_letter_total',
  publishErrorsTotal: 'mongo_kafka_relay_publish_errors_total',
  streamRestartsTotal: 'mongo_kafka_relay_stream_restarts_total',
  readerThreadHeapBytes: 'mongo_kafka_relay_reader_thread_heap_bytes',
  filteredEventsTotal: 'mongo_kafka_relay_filtered_events_total',
  buildInfo: 'mongo_kafka_relay_build_info',
  leaseOwner: 'mongo_kafka_relay_lease_owner',
  up: 'mongo_kafka_relay_ready',
  oplogWindowSeconds: 'mongo_kafka_relay_oplog_window_seconds',
  oplogHeadroomSeconds: 'mongo_kafka_relay_oplog_headroom_seconds',
  oplogWindowKnown: 'mongo_kafka_relay_oplog_window_known',
  partitionCountChangesTotal: 'mongo_kafka_relay_partition_count_changes_total',
  producerResetsTotal: 'mongo_kafka_relay_producer_resets_total',
  mongodbTransactionsSplitTotal: 'mongo_kafka_relay_mongodb_transactions_split_total',
  kafkaTransactionRecords: 'mongo_kafka_relay_kafka_transaction_records',
  kafkaTransactionCommitSeconds: 'mongo_kafka_relay_kafka_transaction_commit_seconds',
  sinkStalledSeconds: 'mongo_kafka_relay_sink_stalled_seconds',
  snapshotDocumentsTotal: 'mongo_kafka_relay_snapshot_documents_total',
  snapshotCollections: 'mongo_kafka_relay_snapshot_collections',
  snapshotRemainingDocuments: 'mongo_kafka_relay_snapshot_remaining_documents',
} as const;

/** The `ns` value of events of namespaces beyond METRICS_NS_LABEL_LIMIT. */
export const OTHER_NAMESPACES = '_other';
