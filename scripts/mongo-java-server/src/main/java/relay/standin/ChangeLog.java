package relay.standin;

import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * The stand-in's oplog: an ordered, capped map from cluster time to change. Unlike mongo-java-server's
 * CollectionBackedOplog (a collection that every getMore rescans and sorts), readers seek to their position
 * and wait on a condition for appends.
 */
final class ChangeLog {

    enum Op {
        INSERT("insert"), UPDATE("update"), REPLACE("replace"), DELETE("delete"),
        DROP("drop"), RENAME("rename"), DROP_DATABASE("dropDatabase");

        final String operationType;

        Op(String operationType) {
            this.operationType = operationType;
        }
    }

    /**
     * One change. {@code post}/{@code pre} are the document after/before it (inserts and replaces always keep
     * {@code post}; updates and deletes keep images only when the collection has changeStreamPreAndPostImages).
     */
    record Entry(long ts, Instant wall, Op op, String db, String coll, Object id, Document post, Document pre,
                 Document updateDescription, String toDb, String toColl, boolean imagesKept) {
    }

    /** What a reader may rely on: entries up to lastTs exist; nothing will ever be appended at or before highWaterMark. */
    record Snapshot(long lastTs, long highWaterMark) {
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition appended = lock.newCondition();
    private final ConcurrentSkipListMap<Long, Entry> entries = new ConcurrentSkipListMap<>(Long::compareUnsigned);
    private final long maxEntries;
    /** Tokens from before this server started cannot be resumed (its data did not survive a restart). */
    private final Position start;
    private long size;
    private long lastTs;
    /** The largest time handed out, as an entry or as a high-water mark; every new entry is later. */
    private long floorTs;
    private volatile Position lostThrough;

    ChangeLog(long maxEntries) {
        this.maxEntries = maxEntries;
        // Start one second ahead: every token of a previous run of this server (whose data is gone) is then
        // older than `start` and fails with 286, even if that run ended within the current second.
        this.floorTs = (Instant.now().getEpochSecond() + 1) << 32;
        this.start = new Position(floorTs, Position.AT_TIME);
    }

    void append(Op op, String db, String coll, Object id, Document post, Document pre, Document updateDescription,
                String toDb, String toColl, boolean imagesKept) {
        lock.lock();
        try {
            long ts = Math.max(nowSeconds() << 32 | 1, floorTs + 1);
            floorTs = ts;
            lastTs = ts;
            entries.put(ts, new Entry(ts, Instant.now(), op, db, coll, id, post, pre, updateDescription, toDb, toColl,
                imagesKept));
            if (++size > maxEntries) {
                Long evicted = entries.pollFirstEntry().getKey();
                size--;
                lostThrough = new Position(evicted, Position.SCANNED);
            }
            appended.signalAll();
        } finally {
            lock.unlock();
        }
    }

    Snapshot snapshot() {
        lock.lock();
        try {
            // The high-water mark follows the wall clock even without writes (like a replica set's periodic
            // no-op oplog entries), so an idle stream's resume token keeps advancing.
            floorTs = Math.max(floorTs, nowSeconds() << 32);
            return new Snapshot(lastTs, floorTs);
        } finally {
            lock.unlock();
        }
    }

    /** The cluster time reported in responses ($clusterTime/operationTime). */
    long clusterTime() {
        lock.lock();
        try {
            return floorTs;
        } finally {
            lock.unlock();
        }
    }

    /** Entries with {@code fromTs <= ts <= toTs}, oldest first; a seek, not a scan. */
    Collection<Entry> between(long fromTs, long toTs) {
        if (Long.compareUnsigned(fromTs, toTs) > 0) {
            return List.of();
        }
        return entries.subMap(fromTs, true, toTs, true).values();
    }

    Entry at(long ts) {
        return entries.get(ts);
    }

    /** Fails exactly like MongoDB when events after {@code position} may no longer be in the log. */
    void checkResumable(Position position) {
        Position lost = lostThrough;
        if (position.compareTo(start) < 0 || (lost != null && position.compareTo(lost) < 0)) {
            throw new MongoServerError(286, "ChangeStreamHistoryLost",
                "Resume of change stream was not possible, as the resume point may no longer be in the oplog.");
        }
    }

    /** MongoDB rejects an event token whose event is not in the (retained) oplog. */
    void checkTokenExists(Position position) {
        boolean eventToken = position.kind() == Position.EVENT || position.kind() == Position.INVALIDATE;
        if (eventToken && Long.compareUnsigned(position.ts(), snapshot().lastTs()) <= 0 && at(position.ts()) == null) {
            throw new MongoServerError(280, "ChangeStreamFatalError",
                "cannot resume stream; the resume token was not found. " + position.toToken().toString());
        }
    }

    /** Waits until something is appended after {@code knownLastTs}; false on timeout. */
    boolean awaitAppend(long knownLastTs, long deadlineNanos) throws InterruptedException {
        lock.lock();
        try {
            while (lastTs == knownLastTs) {
                long remaining = deadlineNanos - System.nanoTime();
                if (remaining <= 0) {
                    return false;
                }
                appended.awaitNanos(Math.min(remaining, TimeUnit.SECONDS.toNanos(1)));
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    private static long nowSeconds() {
        return Instant.now().getEpochSecond();
    }

    static boolean isCaptured(String db, String coll) {
        // Like mongod: nothing in `local` is replicated, and system collections are not change events.
        return !db.equals("local") && !coll.startsWith("system.");
    }

    /**
     * What mongo-java-server calls for drops (through the protected createOplog() hook). Document writes are
     * captured by StandInCollection instead, because only there are the before/after images at hand.
     */
    Oplog asOplog() {
        ChangeLog log = this;
        return new Oplog() {
            @Override
            public void handleInsert(String namespace, List<Document> documents) {
            }

            @Override
            public void handleUpdate(String namespace, Document selector, Document query, List<Object> ids) {
            }

            @Override
            public void handleDelete(String namespace, Document query, List<Object> deletedIds) {
            }

            @Override
            public void handleDropCollection(String namespace) {
                String db = Utils.getDatabaseNameFromFullName(namespace);
                String coll = Utils.getCollectionNameFromFullName(namespace);
                if (isCaptured(db, coll)) {
                    log.append(Op.DROP, db, coll, null, null, null, null, null, null, false);
                }
            }

            @Override
            public Cursor createCursor(Document changeStream, String namespace, Aggregation aggregation) {
                throw new IllegalStateException("change streams are opened by StandInBackend");
            }
        };
    }
}
