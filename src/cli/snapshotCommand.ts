/**
 * `mongo-kafka-relay snapshot [targets...]`: ask for a snapshot (a copy of the existing documents,
 * src/snapshot/) of some or all watched collections. The request is written into the checkpoint
 * document; the relay performs it at its NEXT START (a running relay does not pick it up: restart it).
 * No lease is needed — the request does not move the stream's position.
 *
 * `snapshot --cancel` withdraws a pending request (src/cli/snapshotCancel.ts); a copy already running
 * is not stopped by it.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';
import { targetCovered } from '../app/snapshotStartup.js';
import {
  formatTarget,
  parseWatchTargets,
  WatchTargetError,
  type WatchTarget,
} from '../config/watchTargets.js';
import { withStore } from './checkpointView.js';
import { loadForCommand, printWarnings } from './configOutput.js';
import { cancelSnapshotRequest, refuseCancelWithTargets } from './snapshotCancel.js';

export function registerSnapshotCommand(program: Command): void {
  program
    .command('snapshot')
    .description(
      'request a snapshot (copy of the existing documents) of [targets] (default: every RELAY_WATCH target); the relay performs it at its next start',
    )
    .argument('[targets...]', 'db.coll, db.* or * — each within RELAY_WATCH')
    .option('--config <file>', 'configuration file (JSON or YAML); environment variables override it')
    .option('--cancel', 'withdraw the pending request instead (a snapshot already running is not stopped)')
    .action(async (names: string[], opts: { config?: string; cancel?: boolean }) => {
      if (opts.cancel) refuseCancelWithTargets(names);
      const { config, warnings } = loadForCommand(opts, 'checkpoint');
      printWarnings(warnings);
      if (opts.cancel) {
        await cancelSnapshotRequest(config);
        return;
      }
      const configured = config.derived.targets;
      const targets = names.length > 0 ? requested(names, configured) : [...configured];
      const existing = await withStore(config, async (store) => {
        const checkpoint = await store.read();
        await store.requestSnapshot({
          targets: names.length > 0 ? targets.map(formatTarget) : [],
          requestedAt: new Date(),
          requestedBy: `${userInfo().username}@${hostname()} (cli)`,
        });
        return checkpoint;
      });
      const running = existing?.snapshot?.state === 'running';
      process.stdout.write(
        `snapshot of ${targets.map(formatTarget).join(', ')} requested for checkpoint ${config.derived.checkpointId}; ` +
          'the relay performs it at its next start (a running relay does not pick it up: restart it, e.g. ' +
          '`kubectl rollout restart deployment/mongo-kafka-relay`)' +
          (running
            ? '; a snapshot is still running: it completes first, the requested one follows at the start after that\n'
            : '\n'),
      );
    });
}

function requested(names: string[], configured: readonly WatchTarget[]): WatchTarget[] {
  let targets: WatchTarget[];
  try {
    targets = parseWatchTargets(names.join(','));
  } catch (error) {
    if (error instanceof WatchTargetError) throw new RelayExit(`snapshot: ${error.message}`, ExitCode.usage);
    throw error;
  }
  const outside = targets.filter((t) => !targetCovered(t, configured));
  if (outside.length > 0)
    throw new RelayExit(
      `snapshot: ${outside.map(formatTarget).join(', ')} ${outside.length > 1 ? 'are' : 'is'} not watched ` +
        `(RELAY_WATCH=${configured.map(formatTarget).join(',')}); name collections within it, or change RELAY_WATCH first`,
      ExitCode.usage,
    );
  return targets;
}
