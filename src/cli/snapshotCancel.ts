/**
 * `mongo-kafka-relay snapshot --cancel`: withdraw a snapshot request before the relay's next start
 * performs it. Only the request is removed: a copy already running is resumable by design and
 * continues (cancelling it would need the running relay's cooperation; not offered). Exit 0 whether
 * or not a request was pending — the outcome wanted (no request pending) holds either way.
 */
import type { RelayConfig } from '../config/settings.js';
import { RelayExit } from '../app/errors.js';
import { ExitCode } from '../app/exitCodes.js';
import { withStore } from './checkpointView.js';
import { describeSnapshot, describeSnapshotRequest, requestText } from './snapshotView.js';

/** `--cancel` withdraws the whole request; targets alongside it would suggest a partial cancel. */
export function refuseCancelWithTargets(names: readonly string[]): void {
  if (names.length === 0) return;
  throw new RelayExit(
    `snapshot: --cancel takes no targets (got ${names.join(' ')}): it withdraws the whole pending request. ` +
      'Run `mongo-kafka-relay snapshot --cancel` alone, then `mongo-kafka-relay snapshot <targets...>` to request other targets',
    ExitCode.usage,
  );
}

export async function cancelSnapshotRequest(config: RelayConfig): Promise<void> {
  const id = config.derived.checkpointId;
  const { removed, running } = await withStore(config, async (store) => {
    const request = await store.cancelSnapshotRequest();
    const snapshot = describeSnapshot((await store.read())?.snapshot);
    return {
      removed: describeSnapshotRequest(request),
      running: snapshot?.state === 'running' ? snapshot : null,
    };
  });
  const lines = [
    removed
      ? `cancelled the ${requestText(removed)} for checkpoint ${id}; the next start does not perform it`
      : `no snapshot request pending for checkpoint ${id}: nothing cancelled`,
  ];
  if (running)
    lines.push(
      `a snapshot is RUNNING (id ${running.id}, ${running.collectionsDone} of ${running.collectionsTotal} collections ` +
        `done, ${running.copied} documents copied): --cancel does not stop it. It is resumable and continues ` +
        "(at the relay's next start, if the relay is stopped) until complete; see `mongo-kafka-relay token show`",
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}
