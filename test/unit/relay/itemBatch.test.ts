import { expect } from 'chai';
import { Timestamp } from 'mongodb';
import { ItemBatchBuilder, decodeItemBatch } from '../../../src/pipeline/itemBatch.js';
import type { ReadItem } from '../../../src/pipeline/readItem.js';
import { deadLetterFor, tombstoneFor, type OutboundRecord } from '../../../src/pipeline/toRecord.js';

const position = (n: number, withTime = true) => ({
  token: { _data: `82${String(n).padStart(16, '0')}` },
  clusterTime: withTime ? new Timestamp({ t: 1_700_000_000 + n, i: n % 7 }) : null,
});

function publish(n: number, value: string | Buffer): ReadItem {
  const token = position(n).token._data;
  return {
    kind: 'publish',
    position: position(n),
    readAt: 1_700_000_000_000.25 + n,
    record: {
      topic: `mongo.shop.${n % 2 ? 'orders' : 'items'}`,
      key: token,
      value,
      headers: {
        'change-id': token,
        'operation-type': n % 3 ? 'insert' : 'update',
        ns: 'shop.orders',
        'document-key': `{"_id":${n}}`,
        ...(n % 4 ? { 'cluster-time': `${1_700_000_000 + n}.1` } : {}),
      },
      partitionKey: Buffer.from(`shop.orders\u0000{"_id":${n}}`),
      size: 300 + n,
      ns: 'shop.orders',
      operationType: n % 3 ? 'insert' : 'update',
    },
  };
}

/** What the receiving side sees: values and partition keys as Buffers. */
function asReceived(item: ReadItem): ReadItem {
  if (item.kind !== 'publish') return item;
  const received = (r: OutboundRecord): OutboundRecord => ({
    ...r,
    value: r.value === null ? null : Buffer.from(r.value),
    partitionKey: Buffer.from(r.partitionKey),
  });
  return {
    ...item,
    record: received(item.record),
    ...(item.tombstone ? { tombstone: received(item.tombstone) } : {}),
  };
}

/** A delete keyed by document (RELAY_KEY=document), followed by its tombstone. */
function deleteWithTombstone(n: number, deadLettered = false): ReadItem {
  const base = publish(n, `{"operationType":"delete","n":${n}}`);
  if (base.kind !== 'publish') throw new Error('unreachable');
  const record: OutboundRecord = {
    ...base.record,
    key: `shop.orders\u0000{"_id":${n}}`,
    headers: { ...base.record.headers, 'operation-type': 'delete' },
    operationType: 'delete',
    eventTimeMs: 1_700_000_000_000 + n,
  };
  const item: ReadItem = { ...base, record, tombstone: tombstoneFor(record) };
  if (!deadLettered) return item;
  return {
    ...item,
    record: deadLetterFor(record, 'pre-image-missing', 'gone', 'relay.dead-letter'),
    deadLetter: 'pre-image-missing',
  };
}

/** Positions compared by what they say (received ones build their Timestamp on demand). */
function plain(items: ReadItem[]): ReadItem[] {
  return items.map((item) => ({
    ...item,
    position: { token: { ...item.position.token }, clusterTime: item.position.clusterTime },
  }));
}

describe('item batches (reader thread -> pump)', () => {
  it('decode(encode(items)) gives back every item in order, values as bytes', () => {
    const items: ReadItem[] = [
      publish(1, '{"a":"ünïcödé ✓"}'),
      { kind: 'filtered', position: position(2), operationType: 'delete' },
      { kind: 'tick', position: position(3, false) },
      publish(4, Buffer.from('{"b":2}')),
      publish(5, 'x'.repeat(70_000)),
      publish(6, ''),
    ];
    const builder = new ItemBatchBuilder(16, 64);
    for (const item of items) builder.add(item);
    const { message, transfer } = builder.take();
    expect(transfer).to.deep.equal([message.bytes]);
    const decoded = decodeItemBatch(structuredClone(message, { transfer }));
    expect(plain(decoded)).to.deep.equal(items.map(asReceived));
  });

  it("carries each item's MongoDB transaction (publish and filtered items), and none where there is none", () => {
    const inTxn = (item: ReadItem, transaction: string): ReadItem => ({
      ...item,
      position: { ...item.position, transaction },
    });
    const items: ReadItem[] = [
      inTxn(publish(1, 'a'), 'aa11:7'),
      inTxn({ kind: 'filtered', position: position(2), operationType: 'delete' }, 'aa11:7'),
      inTxn(publish(3, 'b'), 'aa11:7'),
      publish(4, 'c'),
      inTxn(publish(5, 'd'), 'bb22:1'),
      { kind: 'tick', position: position(6) },
    ];
    const builder = new ItemBatchBuilder(8, 64);
    for (const item of items) builder.add(item);
    const decoded = decodeItemBatch(builder.take().message);
    expect(decoded.map((i) => i.position.transaction)).to.deep.equal([
      'aa11:7',
      'aa11:7',
      'aa11:7',
      undefined,
      'bb22:1',
      undefined,
    ]);
  });

  it('starts afresh after take(), and keeps working when the batch buffer had to grow', () => {
    const builder = new ItemBatchBuilder(4, 16);
    builder.add(publish(1, 'y'.repeat(100)));
    const first = plain(decodeItemBatch(builder.take().message));
    expect(builder.size).to.equal(0);
    builder.add(publish(2, 'z'));
    builder.add({ kind: 'tick', position: position(3) });
    const second = plain(decodeItemBatch(builder.take().message));
    expect(first).to.deep.equal([asReceived(publish(1, 'y'.repeat(100)))]);
    expect(second).to.deep.equal([asReceived(publish(2, 'z')), { kind: 'tick', position: position(3) }]);
  });

  it('carries a tombstone (null value, not empty) after its delete, dead-lettered deletes included', () => {
    const items: ReadItem[] = [
      publish(1, 'a'),
      deleteWithTombstone(2),
      publish(3, ''),
      deleteWithTombstone(4, true),
      { kind: 'tick', position: position(5) },
      deleteWithTombstone(6),
    ];
    // Capacity for the items, not for their records: the record columns grow.
    const builder = new ItemBatchBuilder(items.length, 16);
    for (const item of items) builder.add(item);
    const { message, transfer } = builder.take();
    const decoded = decodeItemBatch(structuredClone(message, { transfer }));
    expect(plain(decoded)).to.deep.equal(items.map(asReceived));
    const second = decoded[1]!;
    if (second.kind !== 'publish') throw new Error('expected a publish item');
    expect(second.tombstone?.value).to.equal(null);
    expect(second.tombstone?.key).to.equal(second.record.key);
    expect(second.tombstone?.headers['change-id']).to.equal(second.position.token._data);
    expect((decoded[2] as { record: OutboundRecord }).record.value).to.deep.equal(Buffer.alloc(0));
  });

  it('refuses an item beyond its capacity instead of dropping it', () => {
    const builder = new ItemBatchBuilder(1, 16);
    builder.add(publish(1, 'a'));
    expect(builder.isFull).to.equal(true);
    expect(() => builder.add(publish(2, 'b'))).to.throw('full');
  });
});
