/**
 * /metrics, /healthz and /readyz on one small HTTP server.
 * - /healthz: 200 while the event loop turns (a loop stuck for longer than `stuckAfterMs` answers 503,
 *   but a truly stuck loop answers nothing, which the probe's timeout also treats as a failure) and the
 *   optional `live` probe agrees (the sink making progress).
 * - /readyz: 200 only while the change stream is open and Kafka is connected.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ProbeState {
  ready(): { ready: boolean; detail: Record<string, boolean> };
  live?(): { live: boolean; detail: Record<string, unknown> };
}

export class MetricsServer {
  private server: Server | null = null;
  private lastTick = Date.now();
  private ticker: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly probes: ProbeState,
    private readonly stuckAfterMs = 10000,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    this.ticker = setInterval(() => (this.lastTick = Date.now()), 1000);
    this.ticker.unref();
    const server = createServer((req, res) => {
      void this.handle(req.url ?? '/').then(({ status, type, body }) => {
        res.writeHead(status, { 'content-type': type });
        res.end(body);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    const server = this.server;
    this.server = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private async handle(url: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (path === '/metrics') {
      return { status: 200, type: this.registry.contentType, body: await this.registry.metrics() };
    }
    if (path === '/healthz') {
      const stuck = Date.now() - this.lastTick > this.stuckAfterMs;
      const live = this.probes.live?.() ?? { live: true, detail: {} };
      const alive = !stuck && live.live;
      return json(alive ? 200 : 503, { alive, ...live.detail });
    }
    if (path === '/readyz') {
      const { ready, detail } = this.probes.ready();
      return json(ready ? 200 : 503, { ready, ...detail });
    }
    return json(404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
  }
}

function json(status: number, body: object): { status: number; type: string; body: string } {
  return { status, type: 'application/json', body: JSON.stringify(body) };
}
