/**
 * Secrets never reach a log line, an error message or the CLI's output: every string that may hold a
 * connection string goes through redactSecrets().
 */
const URI_CREDENTIALS = /\b((?:mongodb(?:\+srv)?|kafka|https?):\/\/)([^@/\s"']+)@/gi;
const URI_SECRET_PARAMS =
  /([?&](?:password|authMechanismProperties|tlsCertificateKeyFilePassword|sslPEMKeyPassword)=)[^&\s"']*/gi;

export function redactSecrets(text: string): string {
  return text.replace(URI_CREDENTIALS, '$1***:***@').replace(URI_SECRET_PARAMS, '$1***');
}

/** A connection string as it may be shown: credentials and secret options masked. */
export function redactUri(uri: string): string {
  return redactSecrets(uri);
}
