/**
 * Secrets never reach a log line, an error message or the CLI's output.
 *
 * Three layers, because no single one is enough:
 * - a value known to be a connection string is redacted by the driver's own connection-string parser
 *   (`mongodb-connection-string-url`), whatever its password contains; a string that does not parse
 *   loses everything between "//" and its last "@";
 * - free text (driver and kafkajs error messages, log lines) has the user info of every URL masked, up
 *   to the last "@" of the URL, and secret options masked;
 * - the secrets of the loaded configuration are remembered (registerSecret) and masked wherever they
 *   appear, in any spelling (raw, percent-encoded, percent-decoded): a password with a space or a quote
 *   can hide in a message where no pattern would find it.
 */
import { redactConnectionString } from 'mongodb-connection-string-url';

export const MASK = '***';

/** Shorter secrets are not searched for in free text: masking every "admin" would make logs unreadable. */
const MIN_REGISTERED_LENGTH = 6;
const registered = new Set<string>();
let registeredByLength: string[] = [];

// In free text a URL's end is unknown, so its user info is everything from "//" to the LAST "@" before
// the next "/" or whitespace: a password may hold quotes, "@" and other characters a parser refuses.
const URL_USER_INFO = /\b((?:mongodb(?:\+srv)?|kafka|https?):\/\/)([^\s/]*)@/gi;
const SECRET_PARAMS =
  /([?&](?:password|proxyPassword|tlsCertificateKeyFilePassword|sslPEMKeyPassword)=)[^&\s"']*/gi;
const AWS_SESSION_TOKEN = /(AWS_SESSION_TOKEN(?::|%3A))[^,&\s"']+/gi;

/** A connection string as it may be shown: credentials and secret options masked. */
export function redactUri(uri: string): string {
  return maskRegistered(maskParams(redactConnectionString(uri, { replacementString: MASK })));
}

/** Any text: every connection string or URL in it redacted, and every registered secret masked. */
export function redactSecrets(text: string): string {
  return maskParams(maskRegistered(text).replace(URL_USER_INFO, `$1${MASK}@`));
}

/** Deep copy of a log record with every string redacted (objects and arrays to a few levels). */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
  return out;
}

/** Remember a secret of the configuration so that it is masked in any text from now on. */
export function registerSecret(secret: string): void {
  const spellings = new Set([secret]);
  try {
    spellings.add(decodeURIComponent(secret));
  } catch {
    // not percent-encoded: the raw spelling is enough
  }
  spellings.add(encodeURIComponent(secret));
  for (const s of spellings) if (s.length >= MIN_REGISTERED_LENGTH) registered.add(s);
  registeredByLength = [...registered].sort((a, b) => b.length - a.length);
}

/** The user info of a connection string (registered as secrets by the configuration loader). */
export function credentialsOf(uri: string): string[] {
  const afterScheme = uri.indexOf('://');
  const at = uri.lastIndexOf('@');
  if (afterScheme < 0 || at < afterScheme) return [];
  const userInfo = uri.slice(afterScheme + 3, at);
  const colon = userInfo.indexOf(':');
  return colon < 0 ? [userInfo] : [userInfo, userInfo.slice(colon + 1)];
}

function maskParams(text: string): string {
  return text.replace(SECRET_PARAMS, `$1${MASK}`).replace(AWS_SESSION_TOKEN, `$1${MASK}`);
}

function maskRegistered(text: string): string {
  let out = text;
  for (const secret of registeredByLength) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}
