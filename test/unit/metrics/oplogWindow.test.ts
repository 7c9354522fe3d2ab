/**
 * The oplog window monitor's reporting: a missing privilege or mongos is said once and stops the
 * reading; a transient failure is said once per streak and retried; a reading is published.
 * (Reading a real oplog is proved in test/integration/relay/oplog-headroom.test.ts.)
 */
import { expect } from 'chai';
import pino from 'pino';
import { Writable } from 'node:stream';
import { OplogWindowMonitor, type OplogBounds, type OplogReading } from '../../../src/metrics/oplogWindow.js';

function capture(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

async function flush(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('OplogWindowMonitor', () => {
  it('publishes the bounds it reads', async () => {
    const { logger } = capture();
    const published: (OplogBounds | null)[] = [];
    const monitor = new OplogWindowMonitor(
      () => Promise.resolve({ ok: true, bounds: { oldest: 5, newest: 9 } }),
      (b) => published.push(b),
      logger,
      60_000,
    );
    expect(await monitor.tick()).to.equal(true);
    monitor.stop();
    expect(published).to.deep.equal([{ oldest: 5, newest: 9 }]);
  });

  for (const reason of ['unauthorized', 'mongos'] as const) {
    it(`says "${reason}" once at warn, with what to do, and stops reading`, async () => {
      const { logger, lines } = capture();
      const published: (OplogBounds | null)[] = [];
      let reads = 0;
      const monitor = new OplogWindowMonitor(
        () => {
          reads += 1;
          return Promise.resolve({ ok: false, reason, message: `because ${reason}` });
        },
        (b) => published.push(b),
        logger,
        1,
      );
      expect(await monitor.tick()).to.equal(false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await flush();
      expect(reads).to.equal(1);
      expect(published).to.deep.equal([null]);
      const warnings = lines.filter((l) => l.level === 40);
      expect(warnings).to.have.lengthOf(1);
      expect(warnings[0]?.msg).to.contain(`because ${reason}`).and.contain('stay absent');
    });
  }

  it('says a transient failure once per streak, keeps reading, and says when it recovers', async () => {
    const { logger, lines } = capture();
    const script: OplogReading[] = [
      { ok: false, reason: 'error', message: 'connection reset' },
      { ok: false, reason: 'error', message: 'connection reset' },
      { ok: true, bounds: { oldest: 1, newest: 2 } },
    ];
    const published: (OplogBounds | null)[] = [];
    const monitor = new OplogWindowMonitor(
      () => Promise.resolve(script.shift() ?? { ok: true, bounds: { oldest: 1, newest: 3 } }),
      (b) => published.push(b),
      logger,
      60_000,
    );
    for (let i = 0; i < 3; i++) expect(await monitor.tick()).to.equal(true);
    monitor.stop();
    expect(published).to.deep.equal([null, null, { oldest: 1, newest: 2 }]);
    expect(lines.filter((l) => l.level === 40)).to.have.lengthOf(1);
    expect(lines.some((l) => l.msg === 'oplog window readable again')).to.equal(true);
  });
});
