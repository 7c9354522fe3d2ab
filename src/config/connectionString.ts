/**
 * MongoDB connection strings, judged by the driver itself: a string is valid exactly when the driver's
 * own parser (the `MongoClient` constructor, which connects nothing) accepts it, so the relay never
 * starts with a string it would only refuse later, after its probes are up.
 */
import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';

/** Throws an Error saying what is wrong and how to fix it; never echoes the string itself. */
export function validateConnectionString(uri: string): void {
  if (!/^mongodb(\+srv)?:\/\//i.test(uri)) {
    throw new Error('must be a MongoDB connection string starting with mongodb:// or mongodb+srv://');
  }
  try {
    new MongoClient(uri);
  } catch (error) {
    throw new Error(`is not a connection string the MongoDB driver accepts: ${explain(uri, error as Error)}`);
  }
}

/**
 * The value of a connection-string option (case-insensitive, as the driver reads them), or undefined
 * when the string does not set it or does not parse.
 */
export function uriOption(uri: string, name: string): string | undefined {
  try {
    const params = new ConnectionString(uri, { looseValidation: true }).searchParams;
    for (const [key, value] of params) if (key.toLowerCase() === name.toLowerCase()) return value;
  } catch {
    // an unparsable string sets nothing; the configuration check reports it
  }
  return undefined;
}

function explain(uri: string, error: Error): string {
  const authority = uri.slice(uri.indexOf('://') + 3).split('/')[0] ?? '';
  if ((authority.match(/@/g) ?? []).length > 1 || /password contains unescaped/i.test(parserDetail(uri))) {
    return (
      'the user name or password holds a character that must be percent-encoded (such as @ : / ? # [ ] %); ' +
      'percent-encode them (e.g. with encodeURIComponent: "@" becomes %40)'
    );
  }
  // The driver's message names the option or part at fault ("option foobar is not supported"); it does
  // not contain the password, but goes through the redaction of the caller anyway.
  const detail = parserDetail(uri);
  return detail && /^invalid connection string$/i.test(error.message) ? detail : error.message;
}

/** The connection-string library's own complaint, often more precise than the driver's summary. */
function parserDetail(uri: string): string {
  try {
    new ConnectionString(uri);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}
