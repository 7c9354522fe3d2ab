/**
 * The Extended JSON v2 text of the scalar values both of the relay's writers emit themselves (numbers
 * and dates), exactly as `BSON.EJSON.stringify` writes them: shared by the writer of decoded values
 * (extendedJson.ts) and the writer of raw BSON (rawExtendedJson.ts), so the two cannot drift apart.
 */

/** Dates in this range are written as ISO strings in relaxed mode (the library's rule). */
const LAST_RELAXED_DATE_MS = 253402300800000;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

/** A JS number as the driver decodes a double, an int32 or a promoted int64. */
export function numberText(n: number, relaxed: boolean): string {
  if (relaxed && Number.isFinite(n)) return JSON.stringify(n);
  if (Number.isInteger(n) && !Object.is(n, -0)) {
    if (n >= INT32_MIN && n <= INT32_MAX) return `{"$numberInt":"${n}"}`;
    if (n >= INT64_MIN && n <= INT64_MAX) return `{"$numberLong":"${n}"}`;
  }
  return `{"$numberDouble":"${Object.is(n, -0) ? '-0.0' : String(n)}"}`;
}

export function dateText(d: Date, relaxed: boolean): string {
  const ms = d.getTime();
  if (relaxed && ms > -1 && ms < LAST_RELAXED_DATE_MS) {
    const iso = d.toISOString();
    return `{"$date":"${d.getUTCMilliseconds() !== 0 ? iso : `${iso.slice(0, -5)}Z`}"}`;
  }
  return `{"$date":{"$numberLong":"${String(ms)}"}}`;
}
