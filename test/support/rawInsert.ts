/**
 * Inserts a document whose BSON bytes the Node driver would never write: the driver encodes JavaScript
 * strings, which are always valid UTF-8, but MongoDB stores what other clients send, and a client that
 * skips UTF-8 validation (or writes raw BSON) can store strings with invalid UTF-8. Reading such a
 * change back makes the driver fail with a BSONError. This sends one `insert` as a raw OP_MSG over a
 * plain TCP connection (no TLS, no auth: the local test servers), with `patch` applied to the encoded
 * document bytes first.
 */
import net from 'node:net';
import { BSON, type Document } from 'mongodb';

const OP_MSG = 2013;

/** Replaces every occurrence of the ASCII `marker` in the encoded document with `bytes` (same length). */
export function patchBytes(encoded: Buffer, marker: string, bytes: Buffer): Buffer {
  const needle = Buffer.from(marker, 'utf8');
  if (needle.length !== bytes.length) throw new Error('the patch must keep the length of the marker');
  const out = Buffer.from(encoded);
  let at = out.indexOf(needle);
  if (at < 0) throw new Error(`marker ${marker} is not in the document`);
  while (at >= 0) {
    bytes.copy(out, at);
    at = out.indexOf(needle, at + needle.length);
  }
  return out;
}

/** An OP_MSG: header, flag bits, then `sections` (the first must be the kind-0 body, its kind byte added here). */
function opMsg(requestId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(16 + 4 + 1);
  header.writeInt32LE(header.length + body.length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(OP_MSG, 12);
  header.writeUInt32LE(0, 16); // flagBits
  header.writeUInt8(0, 20); // section kind 0: the command body
  return Buffer.concat([header, body]);
}

/** `mongodb://host:port/...` → host and port of its first host. */
function firstHost(uri: string): { host: string; port: number } {
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^,/:?]+)(?::(\d+))?/.exec(uri);
  if (!match) throw new Error('rawInsert needs a mongodb:// connection string');
  return { host: match[1]!, port: Number(match[2] ?? 27017) };
}

/**
 * Inserts `doc` into db.coll with `marker` (ASCII) replaced by `bytes` in its encoding; resolves with
 * the server's reply. Throws when the server refused the insert.
 */
export async function insertRawDocument(
  uri: string,
  db: string,
  coll: string,
  doc: Document,
  marker: string,
  bytes: Buffer,
): Promise<Document> {
  const command = BSON.serialize({ insert: coll, documents: [doc], $db: db });
  return send(uri, patchBytes(Buffer.from(command), marker, bytes));
}

/**
 * Inserts the document whose BSON is `documentBytes`, exactly as given (an OP_MSG document sequence:
 * no driver encodes it); resolves with the server's reply, throws when the server refused it.
 */
export async function insertDocumentBytes(
  uri: string,
  db: string,
  coll: string,
  documentBytes: Buffer,
): Promise<Document> {
  const body = Buffer.from(BSON.serialize({ insert: coll, $db: db }));
  const name = Buffer.from('documents\0', 'latin1');
  const sequence = Buffer.alloc(1 + 4);
  sequence[0] = 1; // section kind 1: a document sequence
  sequence.writeInt32LE(4 + name.length + documentBytes.length, 1);
  return send(uri, Buffer.concat([body, sequence, name, documentBytes]));
}

async function send(uri: string, body: Buffer): Promise<Document> {
  const { host, port } = firstHost(uri);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.write(opMsg(1, body)));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= all.readInt32LE(0)) {
        socket.end();
        resolve(all);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('the server closed the connection without a reply')));
  });
  // 16-byte header, 4 flag bytes, 1 section-kind byte, then the reply document.
  const answer = BSON.deserialize(reply.subarray(21), { validation: { utf8: false } });
  if (answer.ok !== 1 || answer.writeErrors) throw new Error(`insert refused: ${JSON.stringify(answer)}`);
  return answer;
}
