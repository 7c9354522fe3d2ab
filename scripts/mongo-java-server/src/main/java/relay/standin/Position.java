package relay.standin;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * A point in the change log: a cluster time plus what happened at it. Resume tokens are this position encoded as
 * {@code {_data: "82<16 hex digits of the timestamp><2 hex digits of the kind>"}}: like MongoDB's KeyString tokens
 * they start with {@code 82} and the 8-byte timestamp, so their uppercase hex strings sort by position.
 *
 * <p>A stream at position P emits exactly the events whose position is greater than P, which makes resumeAfter,
 * startAfter, startAtOperationTime and post-batch resume tokens one rule.
 */
record Position(long ts, int kind) implements Comparable<Position> {

    /** startAtOperationTime: the events at this time are still to come. */
    static final int AT_TIME = 0x00;
    /** The change event of the log entry at this time. */
    static final int EVENT = 0x80;
    /** The invalidate event that follows a drop/rename/dropDatabase entry for the streams it ends. */
    static final int INVALIDATE = 0x81;
    /** High-water mark: everything up to and including this time has been scanned. */
    static final int SCANNED = 0xFF;

    private static final int TS_HEX = 16;

    Document toToken() {
        return new Document("_data", String.format("82%016X%02X", ts, kind));
    }

    BsonTimestamp timestamp() {
        return new BsonTimestamp(ts);
    }

    static Position fromToken(Object token) {
        if (!(token instanceof Document) || !(((Document) token).get("_data") instanceof String)) {
            throw invalidToken("resume token must be a document with a string '_data' field");
        }
        String data = (String) ((Document) token).get("_data");
        if (!data.startsWith("82") || data.length() < 2 + TS_HEX) {
            throw invalidToken("resume token '" + data + "' does not start with a cluster time");
        }
        try {
            long ts = Long.parseUnsignedLong(data.substring(2, 2 + TS_HEX), 16);
            // Tokens of a real mongod carry more after the timestamp; read them as "the event at that time".
            int kind = data.length() == 2 + TS_HEX + 2
                ? Integer.parseInt(data.substring(2 + TS_HEX), 16)
                : EVENT;
            return new Position(ts, kind);
        } catch (NumberFormatException e) {
            throw invalidToken("resume token '" + data + "' is not hex");
        }
    }

    static MongoServerError invalidToken(String message) {
        return new MongoServerError(260, "InvalidResumeToken", message);
    }

    @Override
    public int compareTo(Position other) {
        int byTime = Long.compareUnsigned(ts, other.ts);
        return byTime != 0 ? byTime : Integer.compare(kind, other.kind);
    }

    boolean isAfter(Position other) {
        return compareTo(other) > 0;
    }
}
