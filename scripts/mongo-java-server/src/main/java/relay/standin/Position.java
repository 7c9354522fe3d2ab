package relay.standin;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * A point in the change log, ordered like the fields of mongod's resume token (ResumeTokenData): cluster time,
 * token type (a high-water mark sorts before the events of its cluster time), txnOpIndex (the operations of one
 * transaction or batched write share a cluster time), fromInvalidate, fragmentNum (split events).
 *
 * <p>Resume tokens are this position encoded as {@code {_data: "82" + ts(16) + type(2) + txnOpIndex(8) +
 * fromInvalidate(2) + fragment(4)}} in uppercase hex: like MongoDB's KeyString tokens they start with {@code 82}
 * and the 8-byte timestamp, and their hex strings sort by position.
 *
 * <p>A stream at position P emits exactly the events whose position is greater than P, which makes resumeAfter,
 * startAfter, startAtOperationTime and high-water-mark tokens one rule. {@link #SCANNED} is internal: a live
 * cursor that has read everything up to a cluster time; it is reported as the high-water mark of that time.
 *
 * @param ts       the cluster time (seconds << 32 | increment)
 * @param type     {@link #HIGH_WATER_MARK}, {@link #EVENT} or (internal) {@link #SCANNED}
 * @param opIndex  txnOpIndex: the operation's index within its transaction or batched write (0 otherwise)
 * @param invalidate the invalidate that follows a drop/rename/dropDatabase for the streams it ends
 * @param fragment 0 for a whole event; n for fragment n (1-based) of a split event
 */
record Position(long ts, int type, int opIndex, boolean invalidate, int fragment) implements Comparable<Position> {

    /** A point in time: the events at this cluster time are still to come (startAtOperationTime, PBRT). */
    static final int HIGH_WATER_MARK = 0x00;
    /** A change event (or the invalidate that follows one). */
    static final int EVENT = 0x80;
    /** Internal only: everything up to and including this cluster time has been scanned. */
    static final int SCANNED = 0xFF;

    private static final int TS_HEX = 16;
    private static final int TOKEN_HEX = 2 + TS_HEX + 2 + 8 + 2 + 4;
    /** The launcher's first token format ("82" + ts + one kind byte), still read. */
    private static final int LEGACY_TOKEN_HEX = 2 + TS_HEX + 2;

    static Position at(long ts) {
        return new Position(ts, HIGH_WATER_MARK, 0, false, 0);
    }

    static Position scanned(long ts) {
        return new Position(ts, SCANNED, 0, false, 0);
    }

    static Position event(long ts, int opIndex) {
        return new Position(ts, EVENT, opIndex, false, 0);
    }

    Position invalidateOf() {
        return new Position(ts, EVENT, opIndex, true, 0);
    }

    Position fragment(int number) {
        return new Position(ts, type, opIndex, invalidate, number);
    }

    Position wholeEvent() {
        return new Position(ts, type, opIndex, invalidate, 0);
    }

    boolean isEvent() {
        return type == EVENT;
    }

    /** What a client sees: the internal "scanned through T" is the high-water mark of T, as mongod reports it. */
    Document toToken() {
        Position shown = type == SCANNED ? at(ts) : this;
        return new Document("_data", String.format("82%016X%02X%08X%02X%04X", shown.ts, shown.type, shown.opIndex,
            shown.invalidate ? 1 : 0, shown.fragment));
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
            if (data.length() == TOKEN_HEX) {
                int type = Integer.parseInt(data.substring(18, 20), 16);
                int opIndex = (int) Long.parseLong(data.substring(20, 28), 16);
                boolean invalidate = Integer.parseInt(data.substring(28, 30), 16) != 0;
                int fragment = Integer.parseInt(data.substring(30, 34), 16);
                return new Position(ts, type, opIndex, invalidate, fragment);
            }
            if (data.length() == LEGACY_TOKEN_HEX) {
                int kind = Integer.parseInt(data.substring(18), 16);
                return new Position(ts, kind == 0x81 ? EVENT : kind, 0, kind == 0x81, 0);
            }
            // Tokens of a real mongod carry more after the timestamp; read them as "the event at that time".
            return event(ts, 0);
        } catch (NumberFormatException e) {
            throw invalidToken("resume token '" + data + "' is not hex");
        }
    }

    static MongoServerError invalidToken(String message) {
        return new MongoServerError(260, "InvalidResumeToken", message);
    }

    @Override
    public int compareTo(Position other) {
        int order = Long.compareUnsigned(ts, other.ts);
        if (order == 0) {
            order = Integer.compare(type, other.type);
        }
        if (order == 0) {
            order = Integer.compare(opIndex, other.opIndex);
        }
        if (order == 0) {
            order = Boolean.compare(invalidate, other.invalidate);
        }
        return order != 0 ? order : Integer.compare(fragment, other.fragment);
    }

    boolean isAfter(Position other) {
        return compareTo(other) > 0;
    }
}
