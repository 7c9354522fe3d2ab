/**
 * Which kind of failure a kafkajs error is, decided in one place: the sink's reaction follows from the
 * kind, never from ad-hoc checks. kafkajs wraps the broker's error (retries exceeded, non-retriable,
 * aggregates), so the broker's error type is searched along `cause` and `errors`.
 */

export type FailureKind =
  /** The broker refused the request as too large: split it, then dead-letter a single record. */
  | 'too-large'
  /** The idempotent producer's state is gone or fenced: re-create the producer, re-send. */
  | 'producer-state'
  /** Retrying cannot help (authorization, invalid topic, unsupported version): end the relay. */
  | 'refused'
  /** Anything else (leader moves, broker down, timeouts, not enough replicas): retry with backoff. */
  | 'retriable';

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
/** Kafka's producer-state errors; PRODUCER_FENCED (90) is unknown to kafkajs 2.2.4, see typeOf(). */
const PRODUCER_STATE = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
  'PRODUCER_FENCED',
]);
const REFUSED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'INVALID_TOPIC_EXCEPTION',
  'UNSUPPORTED_VERSION',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

/** Error codes kafkajs 2.2.4 does not know ("Unknown error code N") but the relay must recognise. */
const UNKNOWN_TO_KAFKAJS: Record<number, string> = { 90: 'PRODUCER_FENCED' };

interface ErrorShape {
  name?: unknown;
  type?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  originalError?: unknown;
}

/** Every error type along the chain, outermost first (at most a few levels: kafkajs wraps twice). */
export function errorTypes(error: unknown, depth = 0, acc: string[] = []): string[] {
  if (typeof error !== 'object' || error === null || depth > 4) return acc;
  const e = error as ErrorShape;
  const type = typeOf(e);
  if (type) acc.push(type);
  errorTypes(e.cause, depth + 1, acc);
  errorTypes(e.originalError, depth + 1, acc);
  if (Array.isArray(e.errors)) for (const inner of e.errors) errorTypes(inner, depth + 1, acc);
  return acc;
}

function typeOf(e: ErrorShape): string | undefined {
  if (e.type === 'KAFKAJS_UNKNOWN_ERROR_CODE' && typeof e.message === 'string') {
    const code = Number(/Unknown error code (\d+)/.exec(e.message)?.[1]);
    return UNKNOWN_TO_KAFKAJS[code] ?? 'KAFKAJS_UNKNOWN_ERROR_CODE';
  }
  if (typeof e.type === 'string') return e.type;
  if (e.name === 'KafkaJSSASLAuthenticationError') return 'SASL_AUTHENTICATION_FAILED';
  return undefined;
}

export function classify(error: unknown): { kind: FailureKind; type: string } {
  const types = errorTypes(error);
  const pick = (set: Set<string>): string | undefined => types.find((t) => set.has(t));
  const refused = pick(REFUSED);
  if (refused) return { kind: 'refused', type: refused };
  const state = pick(PRODUCER_STATE);
  if (state) return { kind: 'producer-state', type: state };
  const large = pick(TOO_LARGE);
  if (large) return { kind: 'too-large', type: large };
  return { kind: 'retriable', type: types[types.length - 1] ?? (error as Error)?.name ?? 'unknown' };
}

/** The innermost message, the one that names the broker's answer. */
export function rootMessage(error: unknown): string {
  let e = error as ErrorShape | undefined;
  for (let i = 0; i < 5 && e && typeof e === 'object' && e.cause; i++) e = e.cause as ErrorShape;
  return typeof e?.message === 'string' ? e.message : String(error);
}

/** The first error of class `type` along kafkajs' wrapping (`cause`). */
export function findInChain<T extends Error>(error: unknown, type: new (...args: never[]) => T): T | null {
  let e: unknown = error;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof type) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
