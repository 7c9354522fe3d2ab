/**
 * A mongo-java-server stand-in of a test's own, for behaviour the shared MongoDB cannot be made to show (a tiny
 * oplog, transactions on the stand-in) or that tests the stand-in itself. Started whatever the run's MongoDB is
 * (also next to a real mongod); stopped by the caller, and with the test process in any case.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startMongo, type MongoService, type StandInOptions } from '../../scripts/services/mongo.js';

export async function startDedicatedStandIn(options: StandInOptions = {}): Promise<MongoService> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'relay-stand-in-'));
  const service = await startMongo({ stateDir, kind: 'stand-in', standIn: options, log: () => undefined });
  const stop = service.stop.bind(service);
  service.stop = async () => {
    await stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
  return service;
}
