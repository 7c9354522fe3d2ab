/**
 * Oracle test of the one-pass Extended JSON writer (src/pipeline/extendedJson.ts) on the BSON
 * specification's corpus (test/fixtures/bson-corpus, source and licence in its README): every valid
 * case — each BSON type and its edges (Decimal128, binary subtypes incl. UUID and sensitive, regex
 * options, dates before 1970 and after 9999, -0.0, NaN/Infinity, int64 edges, MinKey/MaxKey,
 * DBPointer/DBRef, Code/CodeWScope, Symbol, Timestamp, keys with `$`, `.`, unicode or empty) — is
 * decoded as the driver decodes a change event (bson's defaults: the driver's cursor options) and
 * must be written byte for byte as `EJSON.stringify` writes it, relaxed and canonical, on its own
 * and as the `fullDocument` of a change event. A mismatch names the file and the case.
 *
 * Decode-error cases must never become a record: the decoder rejects them with a BSONError before
 * any document exists (the driver fails the read; no text is written for them), and that error is what
 * sends a change to the relay's unreadable-event path (src/source/unreadableEvent.ts: found, named by a
 * narrow read, then dead-lettered or exit 7), never a wrong record or a crash loop.
 */
import { expect } from 'chai';
import { BSON } from 'mongodb';
import { stringifyExtendedJson } from '../../../src/pipeline/extendedJson.js';
import { classifyUnreadable } from '../../../src/source/unreadableEvent.js';
import { corpusFiles as files } from '../../support/bsonCorpus.js';

/** What the driver hands the relay: bson's default decoding (promoteValues, promoteLongs, no BigInt). */
const decode = (hex: string): BSON.Document => BSON.deserialize(Buffer.from(hex, 'hex'));

function expectSameText(doc: BSON.Document, what: string): void {
  const event = {
    _id: { _data: '8263A1B2C3000000012B0229296E04' },
    operationType: 'insert',
    fullDocument: doc,
  };
  for (const relaxed of [true, false]) {
    for (const [shape, value] of [
      ['document', doc],
      ['change event', event],
    ] as const) {
      expect(stringifyExtendedJson(value, relaxed), `${what} (${shape}, relaxed: ${relaxed})`).to.equal(
        BSON.EJSON.stringify(value, { relaxed }),
      );
    }
  }
}

describe('Extended JSON writer against the BSON corpus (oracle: bson EJSON.stringify)', () => {
  it('has the corpus: every file of the specification, with valid and decode-error cases', () => {
    expect(files.map((f) => f.name)).to.include.members([
      'binary.json',
      'datetime.json',
      'dbpointer.json',
      'dbref.json',
      'decimal128-1.json',
      'double.json',
      'int64.json',
      'multi-type-deprecated.json',
      'regex.json',
      'top.json',
    ]);
    const valid = files.reduce((n, f) => n + (f.corpus.valid?.length ?? 0), 0);
    const errors = files.reduce((n, f) => n + (f.corpus.decodeErrors?.length ?? 0), 0);
    expect(valid).to.be.greaterThan(300);
    expect(errors).to.be.greaterThan(50);
  });

  for (const { name, corpus } of files) {
    if (!corpus.valid?.length && !corpus.decodeErrors?.length) continue;
    describe(`${name}: ${corpus.description}`, () => {
      for (const c of corpus.valid ?? []) {
        it(`valid: ${c.description}`, () => {
          expectSameText(decode(c.canonical_bson), `${name} "${c.description}" canonical_bson`);
          if (c.degenerate_bson) {
            expectSameText(decode(c.degenerate_bson), `${name} "${c.description}" degenerate_bson`);
          }
        });
      }
      for (const c of corpus.decodeErrors ?? []) {
        it(`decode error: ${c.description} never becomes a document; the relay's unreadable-event path takes it`, () => {
          let thrown: unknown;
          try {
            decode(c.bson);
          } catch (error) {
            thrown = error;
          }
          expect(thrown, `${name} "${c.description}"`).to.be.instanceOf(BSON.BSONError);
          const images = { fullDocument: 'default', fullDocumentBeforeChange: 'off' } as const;
          expect(classifyUnreadable(thrown, images), `${name} "${c.description}"`).to.equal('undecodable');
        });
      }
    });
  }
});
