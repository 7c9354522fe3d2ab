/**
 * A TCP proxy on 127.0.0.1 that can FREEZE: connections stay open but no byte moves in either
 * direction until thawed — a server that accepted a request and never answers (a hung write), which a
 * cut connection (test/support/tcpProxy.ts) cannot show. Bytes that arrive while frozen are held and
 * delivered, in order, after thaw().
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FreezableProxy {
  port: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(targetHost: string, targetPort: number): Promise<FreezableProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const held: (() => void)[] = [];
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      const send = (): void => void to.write(chunk);
      if (frozen) held.push(send);
      else send();
    });
  };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
