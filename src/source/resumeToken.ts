/**
 * Resume tokens as the relay and its CLI handle them. The token's `_data` is the change ID: the Kafka
 * record key and the dedupe key downstream. Treat it as opaque, except for one documented property:
 * tokens of one stream sort by position as strings of the same format version.
 */
import { BSON } from 'mongodb';

export interface ResumeToken {
  _data: string;
}

export class TokenFormatError extends Error {}

/** Accepts the bare hex `_data` string or the Extended JSON `{"_data": "..."}` form. */
export function parseResumeToken(input: string): ResumeToken {
  const text = input.trim();
  let data: unknown = text;
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new TokenFormatError(
        `"${abbreviate(text)}" is not valid JSON; give the hex _data string or {"_data":"<hex>"}`,
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Object.keys(parsed).join() !== '_data') {
      throw new TokenFormatError('a resume token object must have exactly one field, "_data"');
    }
    data = (parsed as { _data: unknown })._data;
  }
  if (typeof data !== 'string' || !/^[0-9A-Fa-f]+$/.test(data) || data.length % 2 !== 0 || data.length < 18) {
    throw new TokenFormatError(
      `"${abbreviate(String(data))}" is not a resume token: expected an even-length hex string (the _data of a change event _id)`,
    );
  }
  return { _data: data.toUpperCase() };
}

/**
 * The cluster time a token was taken at, when the token uses MongoDB's KeyString encoding (a leading
 * 0x82 type byte followed by the 8-byte timestamp). Best effort: null when the format is unknown.
 */
export function clusterTimeOfToken(token: ResumeToken): BSON.Timestamp | null {
  const data = token._data;
  if (!/^82[0-9A-Fa-f]{16}/.test(data)) return null;
  const t = Number.parseInt(data.slice(2, 10), 16);
  const i = Number.parseInt(data.slice(10, 18), 16);
  return new BSON.Timestamp({ t, i });
}

export function formatClusterTime(ts: BSON.Timestamp | null | undefined): string | null {
  return ts ? `${ts.high}.${ts.low}` : null;
}

export function sameToken(a: ResumeToken | null | undefined, b: ResumeToken | null | undefined): boolean {
  return (a?._data ?? null) === (b?._data ?? null);
}

function abbreviate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
