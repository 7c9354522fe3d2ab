/** Process exit codes, documented in the README ("Exit codes"). */
export const ExitCode = {
  ok: 0,
  /** Any other failure: MongoDB or Kafka refused us in a way a retry will not fix, a bug. */
  failure: 1,
  /** Bad command-line usage (unknown command or option, malformed argument). */
  usage: 2,
  /** The configuration is invalid, or does not match the existing checkpoint. Nothing was touched. */
  config: 3,
  /** The checkpoint's position is no longer in the oplog (ChangeStreamHistoryLost). */
  historyLost: 4,
  /** Another relay holds this checkpoint's lease (RELAY_LEASE_WHEN_HELD=exit), or we lost it. */
  lease: 5,
  /** Kafka refused for good: authorization, an invalid topic, an unsupported version (issue 11). */
  kafkaRefused: 6,
  /** An event the change stream cannot deliver (over 16 MB, a required image gone), RELAY_ON_UNREADABLE_EVENT=fail. */
  unreadableEvent: 7,
  /**
   * RELAY_DELIVERY=exactly-once: the broker fenced this relay's transactional producer (another
   * producer with the same transactional id started).
   */
  fenced: 8,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
