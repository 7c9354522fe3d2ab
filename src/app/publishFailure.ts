/** Which exit a failed publish leads to: the pump reports it, the app ends with this code. */
import { LeaseNotHeldError } from '../checkpoint/leaseKeeper.js';
import { KafkaRefusedError, ProduceNotAllowedError, ProducerFencedError } from '../sink/errors.js';
import { RelayExit } from './errors.js';
import { ExitCode } from './exitCodes.js';

export function exitForPublishFailure(error: unknown): RelayExit {
  if (error instanceof LeaseNotHeldError || error instanceof ProduceNotAllowedError) {
    return new RelayExit(error.message, ExitCode.lease);
  }
  if (error instanceof KafkaRefusedError) return new RelayExit(error.message, ExitCode.kafkaRefused);
  if (error instanceof ProducerFencedError) return new RelayExit(error.message, ExitCode.fenced);
  return new RelayExit(`publishing failed: ${(error as Error).message}`, ExitCode.failure);
}
