/**
 * A TCP proxy in front of one Kafka broker's client listener (the broker advertises the proxy's port,
 * so every client connection to that broker passes here). It reads just enough of the Kafka protocol —
 * request frames: int32 size, then int16 API key — to hold Produce requests: a test can let a request
 * wait at the proxy while it moves a partition's leader, then drop or release it. It can also cut the
 * broker off entirely (connections destroyed, new ones refused) while it stays alive for the others.
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
}

export async function startKafkaGate(targetPort: number, targetHost = '127.0.0.1'): Promise<KafkaGate> {
  const connections = new Set<Connection>();
  let holding = false;
  let refusing = false;
  let forwarded = 0;

  const pass = (c: Connection, frame: Buffer): void => {
    if (frame.readInt16BE(4) === PRODUCE_API_KEY) forwarded += 1;
    c.upstream.write(frame);
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    const c: Connection = { client, upstream, pending: Buffer.alloc(0), held: [] };
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
    upstream.pipe(client);
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
