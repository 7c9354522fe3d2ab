/**
 * Exactly-once's rule for ending a Kafka transaction without cutting a MongoDB transaction, and how a
 * transaction is named from a change event's lsid and txnNumber.
 */
import { expect } from 'chai';
import { BSON } from 'mongodb';
import {
  TransactionEnds,
  cutsTransaction,
  restOfTransaction,
  type TransactionMember,
} from '../../../src/sink/transactionBoundary.js';
import { transactionOf } from '../../../src/source/mongoTransaction.js';

const member = (transaction?: string): TransactionMember =>
  transaction === undefined ? { position: {} } : { position: { transaction } };

describe('exactly-once: Kafka transactions end only where a MongoDB transaction ended', () => {
  it('a record outside a MongoDB transaction is always a place to end', () => {
    const ends = new TransactionEnds();
    const r = member();
    ends.arrived(r);
    expect(cutsTransaction(r)).to.equal(false);
    expect(cutsTransaction(undefined)).to.equal(false);
  });

  it("a transaction's record is no place to end until a later item is not part of it", () => {
    const ends = new TransactionEnds();
    const [a, b, c] = [member('s:1'), member('s:1'), member('s:2')];
    ends.arrived(a);
    expect(cutsTransaction(a)).to.equal(true);
    ends.arrived(b);
    expect(cutsTransaction(a), 'a is followed by its own transaction').to.equal(true);
    expect(cutsTransaction(b)).to.equal(true);
    ends.passed('s:1'); // a filtered change of the same transaction
    expect(cutsTransaction(b)).to.equal(true);
    ends.arrived(c);
    expect(cutsTransaction(b), 'the next transaction began').to.equal(false);
    expect(cutsTransaction(c)).to.equal(true);
    ends.passed(undefined); // a tick: the stream had nothing more
    expect(cutsTransaction(c)).to.equal(false);
  });

  it('a change outside any transaction ends the one before it', () => {
    const ends = new TransactionEnds();
    const a = member('s:1');
    ends.arrived(a);
    ends.arrived(member());
    expect(cutsTransaction(a)).to.equal(false);
  });

  it('a full Kafka transaction takes only the rest of the open MongoDB transaction', () => {
    const last = member('s:1');
    const queue = [member('s:1'), member('s:1'), member('s:2'), member('s:1')];
    expect(restOfTransaction(last, queue)).to.equal(2);
    expect(restOfTransaction({ ...last, transactionEnded: true }, queue)).to.equal(0);
    expect(restOfTransaction(member(), queue)).to.equal(0);
  });

  it('names a transaction by session id, user digest and txnNumber, and nothing outside one', () => {
    const id = new BSON.Binary(Buffer.from('00112233445566778899aabbccddeeff', 'hex'), 4);
    const uid = new BSON.Binary(Buffer.from('ff'.repeat(32), 'hex'), 0);
    expect(transactionOf({ lsid: { id }, txnNumber: BSON.Long.fromNumber(12) })).to.equal(
      '00112233445566778899aabbccddeeff:12',
    );
    expect(transactionOf({ lsid: { id, uid }, txnNumber: 12 })).to.equal(
      `00112233445566778899aabbccddeeff:${'ff'.repeat(32)}:12`,
    );
    expect(transactionOf({ lsid: { id }, txnNumber: 13 })).to.not.equal(
      transactionOf({ lsid: { id }, txnNumber: 12 }),
    );
    expect(transactionOf({ operationType: 'insert' })).to.equal(undefined);
  });
});
