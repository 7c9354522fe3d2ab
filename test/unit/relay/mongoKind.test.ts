import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requiredMongoKind, startMongo } from '../../../scripts/services/mongo.js';

describe('MONGO_KIND (scripts/services/mongo.ts)', () => {
  it('accepts mongod, stand-in or nothing, and names the allowed kinds otherwise', () => {
    expect(requiredMongoKind('mongod')).to.equal('mongod');
    expect(requiredMongoKind('stand-in')).to.equal('stand-in');
    expect(requiredMongoKind('')).to.equal(undefined);
    expect(requiredMongoKind(undefined)).to.equal(undefined);
    expect(() => requiredMongoKind('mongo')).to.throw(/MONGO_KIND=mongo .*mongod, stand-in/);
  });

  it('fails instead of falling back to the stand-in when a mongod is required but cannot be had', async () => {
    const saved = { binary: process.env.MONGOMS_SYSTEM_BINARY, uri: process.env.MONGODB_URI };
    const stateDir = mkdtempSync(path.join(tmpdir(), 'mongo-kind-'));
    process.env.MONGOMS_SYSTEM_BINARY = path.join(stateDir, 'no-such-mongod');
    delete process.env.MONGODB_URI;
    try {
      const error = await startMongo({ stateDir, kind: 'mongod', log: () => undefined }).then(
        (service) => service.stop().then(() => undefined),
        (e: unknown) => e as Error,
      );
      expect(error?.message).to.match(/MONGO_KIND=mongod, but no mongod can be had: MONGOMS_SYSTEM_BINARY/);
    } finally {
      for (const [key, value] of [
        ['MONGOMS_SYSTEM_BINARY', saved.binary],
        ['MONGODB_URI', saved.uri],
      ] as const)
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
