import { expect } from 'chai';
import { countFailures } from '../../../src/metrics/countFailures.js';

describe('countFailures', () => {
  it('counts each rejection of the method, passes results and errors through unchanged', async () => {
    const errors: unknown[] = [];
    const store = {
      calls: 0,
      async write(fail: boolean): Promise<string> {
        this.calls += 1;
        await Promise.resolve();
        if (fail) throw new Error('write refused');
        return 'written';
      },
    };
    countFailures(store, 'write', (e) => errors.push(e));
    expect(await store.write(false)).to.equal('written');
    const failure = await store.write(true).catch((e: unknown) => e);
    expect(failure).to.be.instanceOf(Error).with.property('message', 'write refused');
    expect(errors).to.deep.equal([failure]);
    expect(store.calls, 'this is the object itself').to.equal(2);
  });
});
