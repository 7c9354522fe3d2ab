/**
 * The checkpoint IDs of versions before 0.2 (`relay-<16 hex>`, derived from the watch fingerprint).
 * A module of its own because both the store (which lists them) and the identity decisions (which
 * adopt them) need it: kept in either, the two would import each other.
 */
const LEGACY_ID = /^relay-[0-9a-f]{16}$/;

/** An index range that holds every legacy ID (then filtered with the pattern). */
export const LEGACY_ID_RANGE = { from: 'relay-', to: 'relay.' } as const;

/** The ID versions before 0.2 gave a checkpoint of this watch configuration. */
export function legacyCheckpointId(fingerprint: string): string {
  return `relay-${fingerprint}`;
}

export function isLegacyCheckpointId(id: string): boolean {
  return LEGACY_ID.test(id);
}
