import { expect } from 'chai';
import { Timestamp } from 'mongodb';
import { ItemBatchBuilder, decodeItemBatch } from '../../../src/pipeline/itemBatch.js';
import type { ReadItem } from '../../../src/pipeline/readItem.js';

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
  return {
    ...item,
    record: {
      ...item.record,
      value: Buffer.from(item.record.value),
      partitionKey: Buffer.from(item.record.partitionKey),
    },
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

  it('refuses an item beyond its capacity instead of dropping it', () => {
    const builder = new ItemBatchBuilder(1, 16);
    builder.add(publish(1, 'a'));
    expect(builder.isFull).to.equal(true);
    expect(() => builder.add(publish(2, 'b'))).to.throw('full');
  });
});
