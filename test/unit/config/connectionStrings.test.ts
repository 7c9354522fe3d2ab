import { expect } from 'chai';
import { configFrom, configErrorFrom } from './helpers.js';

describe('connection strings are validated by the driver’s own parser (issue 10.10)', () => {
  for (const variable of ['MONGODB_URI', 'RELAY_CHECKPOINT_URI'] as const) {
    const key = variable === 'MONGODB_URI' ? 'mongodb.uri' : 'checkpoint.uri';

    it(`${variable}: refuses an option the driver does not know, naming it`, () => {
      const error = configErrorFrom({ [variable]: 'mongodb://127.0.0.1:1/?fooBar=1' });
      expect(error.problems.map((p) => p.variable)).to.deep.equal([variable]);
      expect(error.message).to.contain(`${variable} (${key}): `);
      expect(error.message).to.match(/option foobar is not supported/i);
    });

    it(`${variable}: refuses an unescaped "@" in the password, says to percent-encode it, shows no password`, () => {
      const error = configErrorFrom({ [variable]: 'mongodb://alice:p@ssw0rd!@db.example/' });
      expect(error.problems.map((p) => p.variable)).to.deep.equal([variable]);
      expect(error.message).to.match(/percent-encode/);
      expect(error.message).not.to.contain('ssw0rd');
    });

    it(`${variable}: refuses an option value the driver refuses (serverSelectionTimeoutMS=soon)`, () => {
      const error = configErrorFrom({ [variable]: 'mongodb://db.example/?serverSelectionTimeoutMS=soon' });
      expect(error.message)
        .to.contain(variable)
        .and.to.match(/serverSelectionTimeoutMS/);
    });
  }

  it('accepts what the driver accepts: replica sets, SRV, options, escaped credentials', () => {
    for (const uri of [
      'mongodb://alice:p%40ss@db1:27017,db2:27017/app?replicaSet=rs0&authSource=admin',
      'mongodb+srv://relay:secret@cluster0.example.net/?retryWrites=true',
      "mongodb://alice:it's_S3cret@db.example/",
    ]) {
      expect(configFrom({ MONGODB_URI: uri, RELAY_CHECKPOINT_URI: uri }).mongodb.uri).to.equal(uri);
    }
  });
});
