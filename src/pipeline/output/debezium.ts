/**
 * RELAY_OUTPUT_FORMAT=debezium: a change as Debezium's MongoDB connector writes it with Kafka Connect's
 * JsonConverter and schemas off (its documented default output, measured against the real connector in
 * test/integration/relay/debezium-compat.test.ts):
 *
 *  - key `{"id":"<documentKey._id in relaxed Extended JSON>"}`, partitioned by those bytes, so every change
 *    of a document goes to the partition Debezium would choose;
 *  - value the envelope `{"before","after","updateDescription","source","op","ts_ms","transaction"}`, where
 *    `before`/`after` are the documents as strict Extended JSON text and `op` is c/u/d (r for snapshots);
 *  - a tombstone (same key, null value) after each delete (the connector's `tombstones.on.delete`);
 *  - the `__debezium.context.*` headers; only insert, update, replace and delete are published.
 */
import { BSON, type Timestamp } from 'mongodb';
import { writeJavaJson } from './javaJson.js';

export interface DebeziumContext {
  /** The connector's logical name (`topic.prefix`): KAFKA_TOPIC without its `.{db}.{coll}`. */
  name: string;
  /** One per relay process, as Debezium's is one per connector run. */
  runId: string;
  /** `source.version`: the relay's own version, not a Debezium release. */
  version: string;
}

/** The operation types Debezium publishes, and its `op` for each (a relay snapshot copy is a read). */
const OPS: Readonly<Record<string, string>> = {
  insert: 'c',
  update: 'u',
  replace: 'u',
  delete: 'd',
  snapshot: 'r',
};

export const debeziumPublishes = (operationType: string): boolean => operationType in OPS;

const STRICT = { mode: 'strict', compact: true } as const;
const KEY = { mode: 'relaxed', compact: true } as const;
const UPDATED_FIELDS = { mode: 'relaxed', compact: false } as const;

export function debeziumKey(documentKey: unknown): string {
  const id = (documentKey as { _id?: unknown } | undefined)?._id;
  return JSON.stringify({ id: writeJavaJson(id, KEY) });
}

export function debeziumHeaders(c: DebeziumContext): Record<string, string> {
  return {
    '__debezium.context.connectorLogicalName': c.name,
    '__debezium.context.taskId': '0',
    '__debezium.context.connectorName': 'mongodb',
    '__debezium.context.runId': c.runId,
  };
}

interface DebeziumEventFields {
  operationType: string;
  ns?: { db: string; coll?: string };
  fullDocument?: unknown;
  fullDocumentBeforeChange?: unknown;
  updateDescription?: {
    updatedFields?: unknown;
    removedFields?: string[];
    truncatedArrays?: { field: string; newSize: number }[];
  };
  clusterTime?: Timestamp;
  wallTime?: Date;
  lsid?: { id?: unknown };
  txnNumber?: unknown;
}

/** A transaction's session ID (a UUID) as text; null outside transactions. */
function sessionId(id: unknown): string | null {
  if (id instanceof BSON.Binary && id.sub_type === BSON.Binary.SUBTYPE_UUID)
    return id.toUUID().toHexString(true);
  return id === undefined || id === null ? null : String(id);
}

const documentText = (doc: unknown): string | null =>
  doc === undefined || doc === null ? null : writeJavaJson(doc, STRICT);

/** The envelope; `nowMs` is its `ts_ms`, when the relay converted the change (Debezium: processed it). */
export function debeziumValue(event: unknown, c: DebeziumContext, nowMs: number): string {
  const e = event as DebeziumEventFields;
  const u = e.operationType === 'update' ? e.updateDescription : undefined;
  const tsMs = e.wallTime?.getTime() ?? (e.clusterTime ? e.clusterTime.high * 1000 : 0);
  const txnNumber = e.txnNumber === undefined || e.txnNumber === null ? null : Number(e.txnNumber);
  return JSON.stringify({
    before: documentText(e.fullDocumentBeforeChange),
    after: documentText(e.fullDocument),
    updateDescription: u
      ? {
          removedFields: u.removedFields?.length ? u.removedFields : null,
          updatedFields: writeJavaJson(u.updatedFields ?? {}, UPDATED_FIELDS),
          truncatedArrays: u.truncatedArrays?.length
            ? u.truncatedArrays.map((t) => ({ field: t.field, size: t.newSize }))
            : null,
        }
      : null,
    source: {
      version: c.version,
      connector: 'mongodb',
      name: c.name,
      ts_ms: tsMs,
      snapshot: e.operationType === 'snapshot' ? 'true' : 'false',
      db: e.ns?.db ?? null,
      sequence: null,
      ts_us: tsMs * 1000,
      ts_ns: tsMs * 1_000_000,
      collection: e.ns?.coll ?? null,
      ord: e.clusterTime ? e.clusterTime.low : 0,
      lsid: sessionId(e.lsid?.id),
      txnNumber,
      wallTime: e.wallTime ? e.wallTime.getTime() : null,
    },
    op: OPS[e.operationType] ?? null,
    ts_ms: nowMs,
    transaction: null,
  });
}
