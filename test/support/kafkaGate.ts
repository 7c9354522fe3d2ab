/**
 * A TCP proxy in front of one Kafka broker's client listener (the broker advertises the proxy's port,
 * so every client connection to that broker passes here). It reads just enough of the Kafka protocol —
 * request frames: int32 size, then int16 API key — to hold Produce requests: a test can let a request
 * wait at the proxy while it moves a partition's leader, then drop or release it. It can also cut the
 * broker off entirely (connections destroyed, new ones refused) while it stays alive for the others,
 * and answer every Produce request of the connections open at that moment with a broker error (the
 * broker still writes the records): a client that opens new connections (a new producer) gets through.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const PRODUCE_API_KEY = 0;

export interface KafkaGate {
  readonly port: number;
  /** From now on, Produce requests (and whatever follows them on their connection) wait here. */
  holdProduce(): void;
  /** Produce requests waiting here. */
  heldProduceRequests(): number;
  /** Produce requests passed on to the broker since the gate opened. */
  forwardedProduceRequests(): number;
  /** Pass on whatever waits and stop holding. */
  release(): void;
  /**
   * Rewrite the answers to Produce requests on the connections open now: every partition gets
   * `errorCode` (e.g. 45 OUT_OF_ORDER_SEQUENCE_NUMBER) although the broker wrote the records.
   * Connections opened later are not touched. Returns how many answers were rewritten so far.
   */
  failProduceOnOpenConnections(errorCode: number): void;
  rewrittenProduceResponses(): number;
  /** Destroy every connection (dropping what waits) and refuse new ones. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

interface Connection {
  client: Socket;
  upstream: Socket;
  pending: Buffer;
  held: Buffer[];
  /** Correlation ids of Produce requests (and their API version) awaiting an answer. */
  produceRequests: Map<number, number>;
  /** Broker-to-client bytes not yet framed (only while answers are rewritten). */
  answers: Buffer;
  failWith: number | null;
}

export async function startKafkaGate(targetPort: number, targetHost = '127.0.0.1'): Promise<KafkaGate> {
  const connections = new Set<Connection>();
  let holding = false;
  let refusing = false;
  let forwarded = 0;
  let rewritten = 0;

  const pass = (c: Connection, frame: Buffer): void => {
    if (frame.readInt16BE(4) === PRODUCE_API_KEY) {
      forwarded += 1;
      c.produceRequests.set(frame.readInt32BE(8), frame.readInt16BE(6));
    }
    c.upstream.write(frame);
  };

  const answer = (c: Connection, chunk: Buffer): void => {
    if (c.failWith === null) {
      c.client.write(chunk);
      return;
    }
    c.answers = c.answers.length ? Buffer.concat([c.answers, chunk]) : chunk;
    while (c.answers.length >= 8) {
      const size = c.answers.readInt32BE(0);
      if (c.answers.length < 4 + size) break;
      const frame = Buffer.from(c.answers.subarray(0, 4 + size));
      c.answers = c.answers.subarray(4 + size);
      const version = c.produceRequests.get(frame.readInt32BE(4));
      if (version !== undefined && rewriteProduceErrors(frame, version, c.failWith)) rewritten += 1;
      c.client.write(frame);
    }
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    const c: Connection = {
      client,
      upstream,
      pending: Buffer.alloc(0),
      held: [],
      produceRequests: new Map(),
      answers: Buffer.alloc(0),
      failWith: null,
    };
    connections.add(c);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      connections.delete(c);
    };
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
    upstream.on('data', (chunk: Buffer) => answer(c, chunk));
    client.on('data', (chunk: Buffer) => {
      c.pending = c.pending.length ? Buffer.concat([c.pending, chunk]) : chunk;
      while (c.pending.length >= 6) {
        const size = c.pending.readInt32BE(0);
        if (c.pending.length < 4 + size) break;
        const frame = c.pending.subarray(0, 4 + size);
        c.pending = c.pending.subarray(4 + size);
        const isProduce = frame.readInt16BE(4) === PRODUCE_API_KEY;
        // Once one request waits, later ones on the same connection wait behind it (order is kept).
        if (holding && (isProduce || c.held.length > 0)) c.held.push(Buffer.from(frame));
        else pass(c, frame);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    holdProduce: () => {
      holding = true;
    },
    heldProduceRequests: () =>
      [...connections].reduce(
        (n, c) => n + c.held.filter((f) => f.readInt16BE(4) === PRODUCE_API_KEY).length,
        0,
      ),
    forwardedProduceRequests: () => forwarded,
    failProduceOnOpenConnections: (errorCode) => {
      for (const c of connections) c.failWith = errorCode;
    },
    rewrittenProduceResponses: () => rewritten,
    release: () => {
      holding = false;
      for (const c of connections) for (const frame of c.held.splice(0)) pass(c, frame);
    },
    cut: () => {
      refusing = true;
      for (const c of [...connections]) {
        c.held = [];
        c.client.destroy();
        c.upstream.destroy();
      }
    },
    restore: () => {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) {
          c.client.destroy();
          c.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

/**
 * Sets every partition's error code in a Produce response (versions 3 to 8, the non-flexible ones
 * kafkajs 2.2.4 uses): correlation id, [topic, [partition, error_code, base_offset, log_append_time,
 * (v5+) log_start_offset, (v8+) record_errors, error_message]], throttle_time_ms.
 */
function rewriteProduceErrors(frame: Buffer, version: number, errorCode: number): boolean {
  if (version < 3 || version > 8) return false;
  let at = 8; // size + correlation id
  const topics = frame.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    at += 2 + frame.readInt16BE(at); // topic name
    const partitions = frame.readInt32BE(at);
    at += 4;
    for (let p = 0; p < partitions; p++) {
      at += 4; // partition index
      frame.writeInt16BE(errorCode, at);
      at += 2 + 8 + 8 + (version >= 5 ? 8 : 0);
      if (version >= 8) return true; // record errors follow; the first partition is enough for a test
    }
  }
  return true;
}
