/**
 * What the run's MongoDB can do (a real mongod replica set, or an emulation with fewer
 * features). Tests that need a capability skip themselves otherwise, saying why:
 *
 *   before(function () { requireCapability(this, 'transactions'); });
 */
import { getServices, type MongoCapabilities } from './services.js';

export type { MongoCapabilities };

export function mongoCapabilities(): MongoCapabilities {
  return getServices().capabilities;
}

export function requireCapability(ctx: Mocha.Context, capability: keyof MongoCapabilities): void {
  if (!mongoCapabilities()[capability]) {
    console.log(`    (skipped: mongodb ${getServices().mongoKind} lacks ${capability})`);
    ctx.skip();
  }
}
