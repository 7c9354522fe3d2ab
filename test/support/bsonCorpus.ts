/**
 * The BSON specification's corpus (test/fixtures/bson-corpus; source, commit and licences in its
 * README), read for the oracle tests of the relay's Extended JSON writers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/bson-corpus');

export interface ValidCase {
  description: string;
  canonical_bson: string;
  degenerate_bson?: string;
}
export interface DecodeErrorCase {
  description: string;
  bson: string;
}
export interface CorpusFile {
  description: string;
  valid?: ValidCase[];
  decodeErrors?: DecodeErrorCase[];
}

/** Every corpus file, by name, sorted. */
export const corpusFiles: { name: string; corpus: CorpusFile }[] = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((name) => ({ name, corpus: JSON.parse(readFileSync(path.join(CORPUS, name), 'utf8')) as CorpusFile }));
