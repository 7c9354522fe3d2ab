/**
 * RELAY_START_AT: where a stream with no checkpoint starts. Only three spellings, each unambiguous:
 * "now", a cluster time "<seconds>[.<increment>]" (both unsigned 32-bit, as in a BSON Timestamp), or an
 * ISO-8601 date or date-time. A date-time must carry its offset ("Z" or "+02:00"): without one it
 * would mean the relay host's local time. `Date.parse` alone is not a validator: it reads
 * "version 2" as 2001-02-01.
 */
import { BSON } from 'mongodb';

export type StartAt = { kind: 'now' } | { kind: 'clusterTime'; time: BSON.Timestamp };

const UINT32_MAX = 0xffffffff;
const CLUSTER_TIME = /^(\d+)(?:\.(\d+))?$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/;

export const START_AT_HELP =
  'must be "now", a cluster time "<seconds>[.<increment>]" or an ISO-8601 date ("2024-05-01") or ' +
  'date-time with an offset ("2024-05-01T10:00:00Z")';

export function parseStartAt(text: string): StartAt {
  if (text === 'now') return { kind: 'now' };
  const clusterTime = CLUSTER_TIME.exec(text);
  if (clusterTime) {
    const seconds = Number(clusterTime[1]);
    const increment = Number(clusterTime[2] ?? 0);
    if (seconds > UINT32_MAX || increment > UINT32_MAX) {
      throw new Error(
        `${START_AT_HELP}; a cluster time's seconds and increment are at most ${UINT32_MAX}` +
          (seconds > UINT32_MAX ? ' (milliseconds? divide by 1000)' : ''),
      );
    }
    return { kind: 'clusterTime', time: new BSON.Timestamp({ t: seconds, i: increment }) };
  }
  return { kind: 'clusterTime', time: new BSON.Timestamp({ t: Math.floor(isoMillis(text) / 1000), i: 0 }) };
}

function isoMillis(text: string): number {
  const date = ISO_DATE.exec(text);
  const dateTime = ISO_DATE_TIME.exec(text);
  const parts = date ?? dateTime;
  if (!parts) throw new Error(START_AT_HELP);
  if (dateTime && dateTime[8] === undefined) {
    throw new Error(`${START_AT_HELP}; add "Z" (UTC) or an offset such as "+02:00" to the time`);
  }
  const [year, month, day] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const [hour, minute, second] = dateTime
    ? [Number(dateTime[4]), Number(dateTime[5]), Number(dateTime[6] ?? 0)]
    : [0, 0, 0];
  // Date.UTC rolls 2024-02-30 over into March: a date is real only if it survives the round trip.
  const check = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw new Error(`${START_AT_HELP}; ${JSON.stringify(text)} is not a real date or time`);
  }
  const millis = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(millis) || millis < 0)
    throw new Error(`${START_AT_HELP}; dates before 1970 have no cluster time`);
  return millis;
}
