import { expect } from 'chai';
import { MongoNetworkError, MongoServerError } from 'mongodb';
import { classifyStreamError } from '../../../src/source/errors.js';

const serverError = (code: number, codeName: string, labels: string[] = []) =>
  new MongoServerError({ ok: 0, code, codeName, errmsg: codeName, errorLabels: labels });

describe('classifyStreamError', () => {
  it('calls ChangeStreamHistoryLost (286) history loss', () => {
    expect(classifyStreamError(serverError(286, 'ChangeStreamHistoryLost'))).to.equal('history-lost');
  });
  it('calls CappedPositionLost (136) on a live cursor history loss: the oplog rolled past its position', () => {
    expect(classifyStreamError(serverError(136, 'CappedPositionLost'))).to.equal('history-lost');
  });
  it('treats elections, shutdowns and network errors as transient', () => {
    for (const [code, name] of [
      [10107, 'NotWritablePrimary'],
      [91, 'ShutdownInProgress'],
      [189, 'PrimarySteppedDown'],
    ] as const) {
      expect(classifyStreamError(serverError(code, name)), name).to.equal('transient');
    }
    expect(classifyStreamError(serverError(999, 'Whatever', ['ResumableChangeStreamError']))).to.equal(
      'transient',
    );
    expect(classifyStreamError(new MongoNetworkError('socket closed'))).to.equal('transient');
  });
  it('treats everything else as fatal: auth, bad pipelines, unknown errors', () => {
    expect(classifyStreamError(serverError(13, 'Unauthorized'))).to.equal('fatal');
    expect(classifyStreamError(serverError(40324, 'Location40324'))).to.equal('fatal');
    expect(classifyStreamError(new TypeError('bug'))).to.equal('fatal');
  });
});
