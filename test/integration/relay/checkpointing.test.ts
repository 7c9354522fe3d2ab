/**
 * Checkpointing, measured against the real Kafka broker and MongoDB: what each mode's name claims.
 *
 * Two vantage points:
 *  - the relay as a process, watched from outside: Kafka's end offsets and the checkpoint document are
 *    read alternately (Kafka first, then the checkpoint, and the other way round), so each comparison
 *    is sound whatever happens in between — positions only ever move forward;
 *  - the relay in this process (RelayApp, as the CLI runs it), with its checkpointer, checkpoint store
 *    and sink observed at every acknowledgement, release and write: exact, with no sampling.
 * Positions are compared by order (resume tokens of one stream sort by position; counts add up), never
 * by waiting for one particular token: the heartbeat may move the checkpoint past the last event.
 */
import { expect } from 'chai';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import type { Admin } from 'kafkajs';
import { RelayApp } from '../../../src/app/relayApp.js';
import { Checkpointer } from '../../../src/checkpoint/checkpointer.js';
import { CheckpointStore, type CheckpointWrite } from '../../../src/checkpoint/checkpointStore.js';
import { loadConfig } from '../../../src/config/load.js';
import { CHECKPOINT_MODES, type CheckpointMode } from '../../../src/config/schema.js';
import type { Progress } from '../../../src/pipeline/ackWindow.js';
import type { OutboundRecord } from '../../../src/pipeline/toRecord.js';
import { KafkaSink, type PublishOutcome } from '../../../src/sink/kafkaSink.js';
import { kafkaClient } from '../../support/kafka.js';
import { relayTestContext, type RelayTestContext } from '../../support/relayFixture.js';
import { killAllRelays, startRelayReady, parseMetrics, sumMetric } from '../../support/relayProcess.js';
import { waitFor } from '../../support/wait.js';

/** The settings these tests run each mode with, and the trailing bound they imply (README, Guarantees). */
const LIMITS = { maxInFlight: 40, maxEvents: 25, maxDelayMs: 300 };
const BOUND: Record<CheckpointMode, number> = {
  continuous: LIMITS.maxInFlight,
  serial: 1,
  batched: LIMITS.maxEvents,
};

const modeEnv = (mode: CheckpointMode): Record<string, string> => ({
  RELAY_CHECKPOINT_MODE: mode,
  RELAY_MAX_IN_FLIGHT: String(LIMITS.maxInFlight),
  RELAY_CHECKPOINT_MAX_EVENTS: String(LIMITS.maxEvents),
  RELAY_CHECKPOINT_MAX_DELAY_MS: String(LIMITS.maxDelayMs),
  // No heartbeat writes in the middle: every write here is an event's.
  RELAY_HEARTBEAT_MS: '600000',
});

async function recordsInKafka(admin: Admin, topic: string): Promise<number> {
  // Right after the relay created the topic, a broker may not know it leads it yet (retriable).
  for (let attempt = 1; ; attempt++) {
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable || attempt >= 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A position just before whatever is written next (the post-batch resume token of a stream opened now),
 * for RELAY_START_AFTER_TOKEN: a relay started at "now" reports ready when it opens its stream, which
 * can be a moment before the server has established it, and a change written in that moment is
 * before "now".
 */
async function startToken(ctx: RelayTestContext, coll: string): Promise<string> {
  const stream = ctx.mongo.db(ctx.db).collection(coll).watch([], { maxAwaitTimeMS: 10 });
  try {
    await stream.tryNext();
    return (stream.resumeToken as { _data: string })._data;
  } finally {
    await stream.close();
  }
}

/** Inserts `n` documents in small batches with short pauses, so the relay streams while we watch. */
async function writeSlowly(ctx: RelayTestContext, coll: string, n: number): Promise<void> {
  const c = ctx.mongo.db(ctx.db).collection<{ _id: number }>(coll);
  for (let i = 0; i < n; i += 10) {
    await c.insertMany(Array.from({ length: Math.min(10, n - i) }, (_, j) => ({ _id: i + j })));
    await new Promise((r) => setTimeout(r, 15));
  }
}

describe('relay: checkpointing', function () {
  let ctx: RelayTestContext;
  afterEach(async () => {
    await killAllRelays();
    await ctx?.close();
  });

  for (const mode of CHECKPOINT_MODES) {
    it(`${mode}: persists every published event in stream order, never ahead of Kafka and at most ${BOUND[mode]} event(s) behind it (watched from outside)`, async function () {
      ctx = await relayTestContext(`cp-${mode}`);
      const n = mode === 'serial' ? 150 : 300;
      const relay = await startRelayReady(
        ctx.env({
          RELAY_WATCH: `${ctx.db}.items`,
          RELAY_START_AFTER_TOKEN: await startToken(ctx, 'items'),
          ...modeEnv(mode),
        }),
      );
      const topic = ctx.topic('items');
      const admin = kafkaClient('checkpointing-test').admin();
      await admin.connect();
      const trailing: number[] = [];
      const ahead: number[] = [];
      const snapshots: { token: string; published: number }[] = [];
      try {
        let writing = true;
        const writer = writeSlowly(ctx, 'items', n).finally(() => (writing = false));
        let published = 0;
        const deadline = Date.now() + 90_000;
        while (writing || published < n) {
          if (Date.now() > deadline) throw new Error(`only ${published} of ${n} events persisted after 90 s`);
          // Kafka, then the checkpoint: the checkpoint can only have moved on, so this over-states
          // nothing: records in Kafka − persisted ≤ bound must hold for these two readings too.
          const inKafka = await recordsInKafka(admin, topic);
          const cp = await ctx.readCheckpoint();
          published = (cp?.counts?.published as number | undefined) ?? 0;
          trailing.push(inKafka - published);
          if (cp?.token) snapshots.push({ token: cp.token._data as string, published });
          // The checkpoint, then Kafka: persisted ≤ records in Kafka.
          ahead.push(published - (await recordsInKafka(admin, topic)));
        }
        await writer;
      } finally {
        await admin.disconnect();
      }
      const { collectTopic } = await import('../../support/kafka.js');
      const collector = await collectTopic(topic);
      // Every record in the topic, so that a duplicate cannot hide a key from the comparison below.
      const total = await (async () => {
        const a = kafkaClient('checkpointing-count').admin();
        await a.connect();
        try {
          return await recordsInKafka(a, topic);
        } finally {
          await a.disconnect();
        }
      })();
      const keys = (await collector.waitForCount(Math.max(n, total), 60_000)).map((r) => r.key!).sort();
      await collector.stop();
      const metricsAtEnd = parseMetrics(await relay.metrics());

      expect(Math.max(...trailing), 'records in Kafka − persisted events, at worst').to.be.at.most(
        BOUND[mode],
      );
      expect(Math.max(...ahead), 'persisted events − records in Kafka, at worst').to.be.at.most(0);
      expect(trailing.length, 'samples taken while streaming').to.be.greaterThan(5);
      for (const s of snapshots) {
        // A position covers exactly the events up to it: count the record keys (tokens) at or before it.
        const upTo = keys.filter((k) => k <= s.token).length;
        const around = keys.slice(Math.max(0, upTo - 2), upTo + 2).join(' ');
        expect(
          s.published,
          `events counted at checkpoint ${s.token} (records ${keys.length}, distinct keys ${new Set(keys).size}, ` +
            `keys around it: ${around}, stream restarts ${sumMetric(metricsAtEnd, 'mongo_kafka_relay_stream_restarts_total')})`,
        ).to.equal(upTo);
      }
      expect(snapshots.at(-1)!.token >= keys.at(-1)!, 'the checkpoint reached the last event').to.equal(true);
      const writes = sumMetric(
        parseMetrics(await relay.metrics()),
        'mongo_kafka_relay_checkpoint_writes_total',
      );
      if (mode === 'serial') expect(writes, 'one write per event').to.be.at.least(n);
      if (mode === 'batched')
        expect(writes)
          .to.be.at.least(Math.ceil(n / LIMITS.maxEvents))
          .and.lessThan(n);
      if (mode === 'continuous') expect(writes).to.be.at.most(n);
    });
  }

  describe('in process, every acknowledgement, release and write observed', () => {
    /** What the relay in this process did, in order; filled by spies around the real components. */
    interface Observed {
      /** performance.now() of each Kafka acknowledgement, by record key. */
      acked: Map<string, number>;
      /** Each progress handed to the checkpointer, and what was unpersisted right after. */
      released: { at: number; token: string; events: number; unpersisted: number; writing: boolean }[];
      writes: { start: number; end?: number; write: CheckpointWrite }[];
      /** Checkpointer state right after each write completed (and the next one, if any, began). */
      afterWrite: { unpersisted: number; writing: boolean }[];
      /** At each publish: events published and not yet persisted before this one. */
      publishedUnpersisted: number[];
      restore(): void;
    }

    function observe(): Observed {
      const o: Observed = {
        acked: new Map(),
        released: [],
        writes: [],
        afterWrite: [],
        publishedUnpersisted: [],
        restore: () => {},
      };
      let checkpointer: Checkpointer | null = null;
      let acknowledgedNotReleased = 0;
      const record = Checkpointer.prototype.record;
      const write = CheckpointStore.prototype.write;
      const publish = KafkaSink.prototype.publish;
      Checkpointer.prototype.record = function (this: Checkpointer, p: Progress) {
        // eslint-disable-next-line @typescript-eslint/no-this-alias -- the spy keeps the instance the relay made
        checkpointer = this;
        const at = performance.now(); // before: a write this release starts must not look earlier
        record.call(this, p);
        const events = p.published + p.filtered + p.deadLettered;
        acknowledgedNotReleased -= p.published;
        o.released.push({
          at,
          token: p.position.token._data,
          events,
          unpersisted: this.unpersistedEvents,
          writing: this.isWriting,
        });
      };
      CheckpointStore.prototype.write = async function (
        this: CheckpointStore,
        owner: string,
        w: CheckpointWrite,
      ) {
        const entry: Observed['writes'][number] = { start: performance.now(), write: w };
        o.writes.push(entry);
        try {
          return await write.call(this, owner, w);
        } finally {
          entry.end = performance.now();
          // The checkpointer reacts to the completion in the same turn; look once it has.
          setImmediate(() => {
            if (checkpointer)
              o.afterWrite.push({
                unpersisted: checkpointer.unpersistedEvents,
                writing: checkpointer.isWriting,
              });
          });
        }
      };
      KafkaSink.prototype.publish = function (this: KafkaSink, r: OutboundRecord): Promise<PublishOutcome> {
        o.publishedUnpersisted.push(
          (checkpointer?.unpersistedEvents ?? 0) + acknowledgedNotReleased + inFlight.size,
        );
        inFlight.add(r.key);
        const outcome = publish.call(this, r);
        // Registered before the pump's own handler, so an acknowledgement is on record before the
        // pump releases anything because of it.
        outcome.then(
          () => {
            inFlight.delete(r.key);
            acknowledgedNotReleased += 1;
            o.acked.set(r.key, performance.now());
          },
          () => inFlight.delete(r.key),
        );
        return outcome;
      };
      const inFlight = new Set<string>();
      o.restore = () => {
        Checkpointer.prototype.record = record;
        CheckpointStore.prototype.write = write;
        KafkaSink.prototype.publish = publish;
      };
      return o;
    }

    async function runInProcess(
      mode: CheckpointMode,
      env: Record<string, string>,
      work: () => Promise<number>,
    ): Promise<{ observed: Observed; n: number }> {
      const from = await startToken(ctx, 'items');
      const observed = observe();
      const config = loadConfig({
        env: {
          ...ctx.env({
            RELAY_WATCH: `${ctx.db}.items`,
            RELAY_START_AFTER_TOKEN: from,
            ...modeEnv(mode),
            ...env,
          }),
          METRICS_PORT: '0',
          LOG_LEVEL: 'silent',
        },
      });
      const app = new RelayApp(config, pino({ level: process.env.TEST_RELAY_LOG ?? 'silent' }));
      const running = app.run();
      try {
        await waitFor(
          async () =>
            app.metricsPort > 0 &&
            (await fetch(`http://127.0.0.1:${app.metricsPort}/readyz`).catch(() => null))?.status === 200,
          { timeoutMs: 60_000, message: 'the in-process relay to report ready' },
        );
        const n = await work();
        await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === n, {
          timeoutMs: 60_000,
          message: `all ${n} events persisted`,
        });
        return { observed, n };
      } finally {
        app.requestStop('test done');
        await running;
        observed.restore();
      }
    }

    const insert = (count: number) => async (): Promise<number> => {
      await writeSlowly(ctx, 'items', count);
      return count;
    };

    it('continuous: the checkpointer never idles while acknowledged events are unpersisted, and no write covers an unacknowledged event', async function () {
      ctx = await relayTestContext('cp-continuous-inproc');
      const { observed: o, n } = await runInProcess('continuous', {}, insert(400));
      // Right after every release and after every write completion: unpersisted events ⇒ a write in flight.
      const idleAfterRelease = o.released.filter((r) => r.unpersisted > 0 && !r.writing);
      const idleAfterWrite = o.afterWrite.filter((w) => w.unpersisted > 0 && !w.writing);
      expect(idleAfterRelease, 'idle with unpersisted events after a release').to.deep.equal([]);
      expect(idleAfterWrite, 'idle with unpersisted events after a write').to.deep.equal([]);
      // Each write covers every event released before it started, and none acknowledged after it did.
      let covered = 0;
      for (const w of o.writes) {
        const releasedBefore = o.released.filter((r) => r.at <= w.start).reduce((s, r) => s + r.events, 0);
        covered = w.write.published + w.write.filtered + w.write.deadLettered; // totals as of the write
        expect(
          covered,
          'events covered by the writes so far = events released before this one began',
        ).to.equal(releasedBefore);
        for (const [key, at] of o.acked)
          if (key <= w.write.token._data)
            expect(at, `write of ${w.write.token._data} began before ${key} was acknowledged`).to.be.at.most(
              w.start,
            );
      }
      expect(covered).to.equal(n);
      expect(o.writes.length, 'group commit: fewer writes than events').to.be.lessThan(n);
      const overlapping = o.writes.filter((w, i) => i > 0 && w.start < o.writes[i - 1]!.end!);
      expect(overlapping, 'one write in flight at a time').to.deep.equal([]);
    });

    it('serial: every event is persisted before the next one is published (at most one event behind)', async function () {
      ctx = await relayTestContext('cp-serial-inproc');
      const { observed: o, n } = await runInProcess('serial', {}, insert(60));
      expect(o.publishedUnpersisted).to.have.length(n);
      expect(
        Math.max(...o.publishedUnpersisted),
        'events published and unpersisted when publishing the next',
      ).to.equal(0);
      expect(
        Math.max(...o.released.map((r) => r.unpersisted)),
        'unpersisted after any acknowledgement',
      ).to.be.at.most(1);
      expect(o.writes.map((w) => w.write.published)).to.deep.equal(
        Array.from({ length: n }, (_, i) => i + 1),
      );
    });

    it('batched: a write starts at most RELAY_CHECKPOINT_MAX_DELAY_MS after the oldest event it covers was acknowledged (measured per write), and covers at most RELAY_CHECKPOINT_MAX_EVENTS', async function () {
      ctx = await relayTestContext('cp-batched-inproc');
      // Lateness of timers on this event loop while the relay runs: the only slack the bound allows
      // besides a previous write still in flight when the delay ran out.
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const { observed: o } = await runInProcess('batched', {}, async () => {
        // Bursts of 7 a second apart: below RELAY_CHECKPOINT_MAX_EVENTS, so the delay must write them.
        const c = ctx.mongo.db(ctx.db).collection<{ _id: number }>('items');
        for (let b = 0; b < 5; b++) {
          await c.insertMany(Array.from({ length: 7 }, (_, j) => ({ _id: b * 7 + j })));
          await new Promise((r) => setTimeout(r, 1000));
        }
        // Then a run large enough for the event bound to write without waiting.
        await c.insertMany(Array.from({ length: 200 }, (_, j) => ({ _id: 1000 + j })));
        return 235;
      });
      loop.disable();
      const lateness = loop.max / 1e6 + 5; // ms: worst observed delay of a 5-ms timer, plus that timer's own period
      let previousStart = -Infinity;
      let previousEnd = -Infinity;
      const delays: number[] = [];
      let coveredBefore = 0;
      for (const w of o.writes) {
        // Writes carry totals: the events of one write are the difference to the previous one.
        const covered = w.write.published + w.write.filtered + w.write.deadLettered;
        const events = covered - coveredBefore;
        coveredBefore = covered;
        expect(events, 'events in one write').to.be.at.most(LIMITS.maxEvents);
        const oldest = o.released.find((r) => r.at > previousStart && r.events > 0);
        if (oldest && events < LIMITS.maxEvents) {
          const waited = w.start - oldest.at;
          const overrun = Math.max(0, previousEnd - (oldest.at + LIMITS.maxDelayMs));
          delays.push(Math.round(waited));
          expect(waited, 'a write below the event bound waits out the delay first').to.be.at.least(
            LIMITS.maxDelayMs - 1,
          );
          expect(
            waited,
            `waited beyond the delay (previous write overran by ${overrun} ms, timers late by up to ${lateness} ms)`,
          ).to.be.at.most(LIMITS.maxDelayMs + overrun + lateness);
        }
        previousStart = w.start;
        previousEnd = w.end ?? Infinity;
      }
      expect(
        delays.length,
        `writes made by the delay (measured waits: ${delays.join(', ')} ms)`,
      ).to.be.at.least(5);
    });
  });

  it('advances the checkpoint over events the relay filters out (RELAY_OPERATION_TYPES)', async function () {
    ctx = await relayTestContext('filtered');
    const relay = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.items`, RELAY_OPERATION_TYPES: 'insert' }),
    );
    const items = ctx.mongo.db(ctx.db).collection<{ _id: number; v?: number }>('items');
    const watch = items.watch();
    await watch.tryNext();
    await items.insertOne({ _id: 1 });
    for (let v = 0; v < 5; v++) await items.updateOne({ _id: 1 }, { $set: { v } });
    const truth = [];
    while (truth.length < 6) truth.push(await watch.next());
    await watch.close();
    const lastUpdate = (truth[5]!._id as { _data: string })._data;
    // By order: a heartbeat may already have moved the checkpoint past the last update.
    await waitFor(
      async () => (((await ctx.readCheckpoint())?.token?._data as string | undefined) ?? '') >= lastUpdate,
      {
        timeoutMs: 20_000,
        message: 'checkpoint at or past the last (filtered) update',
      },
    );
    const cp = await ctx.readCheckpoint();
    expect(cp?.counts).to.deep.include({ published: 1, filtered: 5 });
    const metrics = parseMetrics(await relay.metrics());
    expect(sumMetric(metrics, 'mongo_kafka_relay_filtered_events_total')).to.equal(5);
  });

  it('advances the checkpoint on a quiet stream from the post-batch resume token (heartbeat)', async function () {
    ctx = await relayTestContext('heartbeat');
    // A pipeline that matches nothing: the stream stays quiet while other collections change.
    await startRelayReady(
      ctx.env({
        RELAY_WATCH: `${ctx.db}.*`,
        RELAY_PIPELINE: '[{"$match":{"ns.coll":"never"}}]',
        RELAY_HEARTBEAT_MS: '500',
      }),
    );
    const first = await waitFor(
      async () => (await ctx.readCheckpoint())?.token?._data as string | undefined,
      {
        timeoutMs: 20_000,
        message: 'a first heartbeat checkpoint',
      },
    );
    const noise = ctx.mongo.db(ctx.db).collection<{ _id: number }>('noise');
    for (let i = 0; i < 5; i++) await noise.insertOne({ _id: i });
    const later = await waitFor(
      async () => {
        const t = (await ctx.readCheckpoint())?.token?._data as string | undefined;
        return t !== undefined && t > first && t;
      },
      { timeoutMs: 20_000, message: 'the heartbeat checkpoint to move past the first' },
    );
    expect(later > first).to.equal(true);
    expect((await ctx.readCheckpoint())?.counts?.published ?? 0).to.equal(0);
  });

  it('refuses to start against a checkpoint written with another watch configuration, unless allowed', async function () {
    ctx = await relayTestContext('fingerprint');
    const first = await startRelayReady(ctx.env({ RELAY_WATCH: `${ctx.db}.a` }));
    await ctx.mongo.db(ctx.db).collection<{ _id: number }>('a').insertOne({ _id: 1 });
    await waitFor(async () => (await ctx.readCheckpoint())?.counts?.published === 1, {
      timeoutMs: 20_000,
      message: 'first checkpoint',
    });
    expect(await first.kill('SIGTERM')).to.equal(0);
    const { runCli } = await import('../../support/relayProcess.js');
    const refused = await runCli(['start'], ctx.env({ RELAY_WATCH: `${ctx.db}.b`, METRICS_PORT: '0' }));
    expect(refused.code, refused.stderr + refused.stdout.slice(-3000)).to.equal(3);
    expect(refused.stderr + refused.stdout).to.contain('another watch configuration');
    const allowed = await startRelayReady(
      ctx.env({ RELAY_WATCH: `${ctx.db}.b`, RELAY_ALLOW_WATCH_CHANGE: 'true' }),
    );
    expect(allowed.logs.some((l) => l.msg.includes('RELAY_ALLOW_WATCH_CHANGE=true'))).to.equal(true);
  });
});
