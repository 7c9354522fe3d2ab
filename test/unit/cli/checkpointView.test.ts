/**
 * `token show` on hand-made checkpoint documents: the snapshot's progress and a pending request, in
 * the view (hence --json) and as text lines after the existing ones (issue 20 item 5b).
 */
import { expect } from 'chai';
import { MongoClient, Timestamp } from 'mongodb';
import { CheckpointStore, type CheckpointDoc } from '../../../src/checkpoint/checkpointStore.js';
import { describeCheckpoint, printCheckpoint, type CheckpointView } from '../../../src/cli/checkpointView.js';
import type { StoredSnapshot } from '../../../src/snapshot/snapshotPlan.js';

const STARTED = new Date('2025-03-01T10:00:00.000Z');
const COMPLETED = new Date('2025-03-01T10:05:00.000Z');
const REQUESTED = new Date('2025-03-02T08:30:00.000Z');

function checkpoint(extra: Partial<CheckpointDoc> = {}): CheckpointDoc {
  return {
    _id: 'orders',
    token: { _data: '8265F1A2B3000000012B022C0100296E5A1004ABCDEF0123' },
    clusterTime: new Timestamp({ t: 0x65f1a2b3, i: 1 }),
    counts: { published: 10, filtered: 2, deadLettered: 0 },
    writtenAt: new Date('2025-03-01T10:06:00.000Z'),
    fingerprint: 'f',
    watch: ['shop.orders', 'shop.items', 'shop.users'],
    ...extra,
  };
}

/** Three collections, the second in progress: 1,000 + 250 of an estimated 1,000 + 500 + 2,000 copied. */
function running(): StoredSnapshot {
  return {
    id: '1741000000.1-1',
    number: 1,
    reason: 'initial',
    clusterTime: new Timestamp({ t: 1741000000, i: 1 }),
    collections: [
      { db: 'shop', coll: 'items', estimated: 1000 },
      { db: 'shop', coll: 'orders', estimated: 500 },
      { db: 'shop', coll: 'users', estimated: 2000 },
    ],
    cursor: { index: 1, lastIdJson: '{"$oid":"65f1a2b3c4d5e6f708192a3b"}', copied: 1250 },
    state: 'running',
    startedAt: STARTED,
  };
}

function printed(view: CheckpointView, json = false): string {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    printCheckpoint(view, json);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

describe('token show: snapshot progress and a pending request (describeCheckpoint)', () => {
  // Never connected: describeCheckpoint only reads the store's checkpoint ID.
  const client = new MongoClient('mongodb://127.0.0.1:1');
  const store = new CheckpointStore(client, 'relay', 'checkpoints', 'orders');
  after(() => client.close());

  it('has null snapshot fields and no snapshot lines when the checkpoint has neither', () => {
    const view = describeCheckpoint(store, checkpoint());
    expect(view.snapshot).to.equal(null);
    expect(view.snapshotRequest).to.equal(null);
    const text = printed(view);
    expect(text).not.to.match(/snapshot|requested/);
    expect(describeCheckpoint(store, null)).to.include({ snapshot: null, snapshotRequest: null });
  });

  it('shows a running snapshot: collections done, the current one, copied and estimated remaining', () => {
    const view = describeCheckpoint(store, checkpoint({ snapshot: running() }));
    expect(view.snapshot).to.deep.equal({
      id: '1741000000.1-1',
      state: 'running',
      reason: 'initial',
      collectionsDone: 1,
      collectionsTotal: 3,
      current: 'shop.orders',
      copied: 1250,
      estimatedRemaining: 250 + 2000,
      startedAt: STARTED.toISOString(),
      completedAt: null,
    });
    const lines = printed(view).trimEnd().split('\n');
    // The existing lines come first, unchanged; the snapshot's follow the lease line.
    expect(lines.slice(0, 8)).to.deep.equal(
      printed(describeCheckpoint(store, checkpoint())).trimEnd().split('\n'),
    );
    expect(lines.slice(8)).to.deep.equal([
      `snapshot     running: id 1741000000.1-1, reason initial, started at ${STARTED.toISOString()}`,
      '             collections 1 of 3 done, copying shop.orders',
      '             copied 1250 documents, about 2250 remaining (estimated)',
    ]);
  });

  it('shows a running snapshot whose copy finished (cursor done) as all collections done, none current', () => {
    const snapshot = { ...running(), cursor: { index: 2, copied: 3600, done: true } };
    const view = describeCheckpoint(store, checkpoint({ snapshot }));
    expect(view.snapshot).to.include({ collectionsDone: 3, current: null, estimatedRemaining: 0 });
  });

  it('shows a completed snapshot with its completion time and no estimate', () => {
    const snapshot: StoredSnapshot = {
      ...running(),
      reason: 'requested',
      state: 'done',
      completedAt: COMPLETED,
      cursor: { index: 2, copied: 3512, done: true },
    };
    const view = describeCheckpoint(store, checkpoint({ snapshot }));
    expect(view.snapshot).to.include({
      state: 'done',
      reason: 'requested',
      collectionsDone: 3,
      collectionsTotal: 3,
      current: null,
      copied: 3512,
      estimatedRemaining: 0,
      completedAt: COMPLETED.toISOString(),
    });
    expect(printed(view)).to.contain(
      `snapshot     done: id 1741000000.1-1, reason requested, started at ${STARTED.toISOString()}, ` +
        `completed at ${COMPLETED.toISOString()}\n` +
        '             collections 3 of 3 done\n' +
        '             copied 3512 documents\n',
    );
  });

  it('shows a pending request: its targets (or every watched collection), when and by whom', () => {
    const request = {
      targets: ['shop.orders', 'shop.*'],
      requestedAt: REQUESTED,
      requestedBy: 'ann@ops (cli)',
    };
    const view = describeCheckpoint(store, checkpoint({ snapshotRequest: request }));
    expect(view.snapshotRequest).to.deep.equal({
      targets: ['shop.orders', 'shop.*'],
      requestedAt: REQUESTED.toISOString(),
      requestedBy: 'ann@ops (cli)',
    });
    expect(printed(view)).to.contain(
      `requested    snapshot of shop.orders, shop.*, requested at ${REQUESTED.toISOString()} by ann@ops (cli); ` +
        "performed at the relay's next start\n",
    );
    const all = describeCheckpoint(store, checkpoint({ snapshotRequest: { ...request, targets: [] } }));
    expect(printed(all)).to.match(/^requested {4}snapshot of every watched collection, requested at /m);
  });

  it('shows a request on a checkpoint without a position (created by the request) after the lease line', () => {
    const doc = checkpoint({
      token: null,
      clusterTime: null,
      snapshotRequest: { targets: [], requestedAt: REQUESTED, requestedBy: 'ann@ops (cli)' },
    });
    const lines = printed(describeCheckpoint(store, doc)).trimEnd().split('\n');
    expect(lines.slice(0, 3)).to.deep.equal([
      'checkpoint   orders',
      'token        (none: the next start begins at RELAY_START_AT)',
      'lease        free',
    ]);
    expect(lines[3]).to.match(/^requested {4}snapshot of every watched collection/);
  });

  it('carries both in --json, with a running snapshot and a request pending behind it', () => {
    const request = { targets: ['shop.users'], requestedAt: REQUESTED, requestedBy: 'ann@ops (cli)' };
    const view = describeCheckpoint(store, checkpoint({ snapshot: running(), snapshotRequest: request }));
    const json = JSON.parse(printed(view, true)) as CheckpointView;
    expect(json.snapshot).to.deep.equal(view.snapshot);
    expect(json.snapshotRequest).to.deep.equal(view.snapshotRequest);
    expect(json.snapshot?.state).to.equal('running');
  });
});
