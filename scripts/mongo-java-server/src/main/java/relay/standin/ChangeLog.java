package relay.standin;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * The stand-in's oplog: an ordered, capped map from cluster time to an oplog entry. An entry holds one change, or
 * several (a committed transaction, a batch of a multi-delete: mongod writes those as one applyOps entry, so their
 * events share a cluster time and differ by txnOpIndex), or none (the periodic no-op a primary writes while idle).
 * Unlike mongo-java-server's CollectionBackedOplog (a collection that every getMore rescans and sorts), readers seek
 * to their position and wait on a condition for appends.
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
     * One change as a write produces it. {@code post}/{@code pre} are the document after/before it (inserts and
     * replaces always keep {@code post}; updates and deletes keep images only when the collection has
     * changeStreamPreAndPostImages).
     */
    record Change(Op op, String db, String coll, Object id, Document post, Document pre, Document updateDescription,
                  String toDb, String toColl, boolean imagesKept) {
    }

    /** A change in the log: its cluster time, its index within its oplog entry, and the transaction it was part of. */
    record Entry(long ts, int opIndex, Instant wall, Change change, Document lsid, Long txnNumber) {

        Op op() {
            return change.op();
        }

        String db() {
            return change.db();
        }

        String coll() {
            return change.coll();
        }

        Position position() {
            return Position.event(ts, opIndex);
        }
    }

    /** One oplog entry; {@code entries} is empty for a no-op. {@code bytes}: its size as the cap counts it. */
    record Group(long ts, List<Entry> entries, long bytes) {
    }

    /** What an oplog entry's own fields (ts, t, wall, op, ns, ui, o2, txn ids) add to its documents' BSON size. */
    static final int ENTRY_OVERHEAD_BYTES = 100;

    /** The BSON size of a change as the cap counts it: its documents plus the entry's own fields. */
    static long sizeOf(Change change) {
        long bytes = ENTRY_OVERHEAD_BYTES;
        for (Document document : new Document[] {change.post(), change.pre(), change.updateDescription()}) {
            if (document != null) {
                bytes += SizeLimits.sizeOf(document);
            }
        }
        return bytes;
    }

    /** What a reader may rely on: entries up to lastTs exist; nothing will ever be appended at or before it. */
    record Snapshot(long lastTs) {
    }

    /**
     * Changes collected on the current thread instead of being logged one by one: a transaction (logged at commit)
     * or a batched multi-delete (logged every {@code flushEvery} changes, like mongod's batched delete stage).
     */
    final class Batch {
        private final List<Change> changes = new ArrayList<>();
        private final int flushEvery;
        private final Document lsid;
        private final Long txnNumber;

        private Batch(int flushEvery, Document lsid, Long txnNumber) {
            this.flushEvery = flushEvery;
            this.lsid = lsid;
            this.txnNumber = txnNumber;
        }

        private void add(Change change) {
            changes.add(change);
            if (flushEvery > 0 && changes.size() >= flushEvery) {
                flush();
            }
        }

        /** Logs what was collected as one oplog entry. */
        void flush() {
            if (!changes.isEmpty()) {
                appendGroup(List.copyOf(changes), lsid, txnNumber);
                changes.clear();
            }
        }

        void discard() {
            changes.clear();
        }
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition appended = lock.newCondition();
    private final ConcurrentSkipListMap<Long, Group> groups = new ConcurrentSkipListMap<>(Long::compareUnsigned);
    private final ThreadLocal<Batch> collecting = new ThreadLocal<>();
    private final long maxEntries;
    /** mongod caps its oplog by size (oplogSizeMB); so does the stand-in, whose oplog lives in the JVM heap. */
    private final long maxBytes;
    /** Tokens from before this server started cannot be resumed (its data did not survive a restart). */
    private final Position start;
    private long size;
    private long bytes;
    private long lastTs;
    private long lastAppendNanos = System.nanoTime();
    private volatile Position lostThrough;

    ChangeLog(long maxEntries, long maxBytes) {
        this.maxEntries = maxEntries;
        this.maxBytes = maxBytes;
        // Start one second ahead: every token of a previous run of this server (whose data is gone) is then
        // older than `start` and fails with 286, even if that run ended within the current second.
        this.lastTs = (Instant.now().getEpochSecond() + 1) << 32;
        this.start = Position.at(lastTs);
    }

    /** Logs a change: alone, or into the batch the current thread is collecting. */
    void append(Change change) {
        Batch batch = collecting.get();
        if (batch != null) {
            batch.add(change);
        } else {
            appendGroup(List.of(change), null, null);
        }
    }

    /** A batch of a transaction; the caller flushes it at commit. */
    Batch transactionBatch(Document lsid, long txnNumber) {
        return new Batch(0, lsid, txnNumber);
    }

    /** Runs {@code work} with its changes collected into {@code batch} (flushed by the caller). */
    <T> T collectingInto(Batch batch, Supplier<T> work) {
        Batch outer = collecting.get();
        collecting.set(batch);
        try {
            return work.get();
        } finally {
            collecting.set(outer);
        }
    }

    /** Runs a multi-document delete the way mongod 6.1+ does: its deletes are logged in batches of {@code size}. */
    <T> T batchedDeletes(int size, Supplier<T> work) {
        if (collecting.get() != null) {
            return work.get(); // inside a transaction: the transaction's entry holds them
        }
        Batch batch = new Batch(size, null, null);
        try {
            return collectingInto(batch, work);
        } finally {
            batch.flush();
        }
    }

    /** Whether the current thread's changes go to a batch rather than straight to the log. */
    boolean isCollecting() {
        return collecting.get() != null;
    }

    private void appendGroup(List<Change> changes, Document lsid, Long txnNumber) {
        long groupBytes = changes.isEmpty() ? ENTRY_OVERHEAD_BYTES : 0; // a no-op is an entry of its own
        for (Change change : changes) {
            groupBytes += sizeOf(change); // outside the lock: encoding is the costly part
        }
        lock.lock();
        try {
            long ts = Math.max(nowSeconds() << 32 | 1, lastTs + 1);
            Instant wall = Instant.now();
            List<Entry> entries = new ArrayList<>(changes.size());
            for (int i = 0; i < changes.size(); i++) {
                entries.add(new Entry(ts, i, wall, changes.get(i), lsid, txnNumber));
            }
            lastTs = ts;
            lastAppendNanos = System.nanoTime();
            groups.put(ts, new Group(ts, entries, groupBytes));
            size++;
            bytes += groupBytes;
            // Like mongod's truncation, the newest entry always stays, even when it alone is over the cap.
            while (size > 1 && (size > maxEntries || bytes > maxBytes)) {
                Group evicted = groups.pollFirstEntry().getValue();
                size--;
                bytes -= evicted.bytes();
                lostThrough = Position.scanned(evicted.ts());
            }
            appended.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * mongod's periodic no-op writer (periodicNoopIntervalSecs, 10 s): while nothing is written, a primary still
     * writes a no-op every interval, so the high-water mark of idle change streams moves on. Only then.
     */
    void writeNoopIfIdle(long intervalNanos) {
        lock.lock();
        try {
            if (System.nanoTime() - lastAppendNanos >= intervalNanos) {
                appendGroup(List.of(), null, null);
            }
        } finally {
            lock.unlock();
        }
    }

    Snapshot snapshot() {
        lock.lock();
        try {
            return new Snapshot(lastTs);
        } finally {
            lock.unlock();
        }
    }

    /** The cluster time reported in responses ($clusterTime/operationTime): the newest oplog entry. */
    long clusterTime() {
        return snapshot().lastTs();
    }

    /** Oplog entries with {@code fromTs <= ts <= toTs}, oldest first; a seek, not a scan. */
    Collection<Group> between(long fromTs, long toTs) {
        if (Long.compareUnsigned(fromTs, toTs) > 0) {
            return List.of();
        }
        return groups.subMap(fromTs, true, toTs, true).values();
    }

    /**
     * Fails exactly like MongoDB when events after {@code position} may no longer be in the log: a new stream gets
     * 286 ChangeStreamHistoryLost; a live cursor that fell behind the cap gets 136 CappedPositionLost.
     */
    void checkResumable(Position position, boolean liveCursor) {
        Position lost = lostThrough;
        boolean beforeStart = position.compareTo(start) < 0;
        boolean evicted = lost != null && position.compareTo(lost) < 0;
        if (liveCursor && evicted) {
            throw new MongoServerError(136, "CappedPositionLost",
                "CollectionScan died due to position in capped collection being deleted. Last seen record id: "
                    + "RecordId(" + position.ts() + ")");
        }
        if (beforeStart || evicted) {
            throw new MongoServerError(286, "ChangeStreamHistoryLost",
                "Resume of change stream was not possible, as the resume point may no longer be in the oplog.");
        }
    }

    /** MongoDB rejects an event token whose event is not in the (retained) oplog. */
    void checkTokenExists(Position position) {
        if (!position.isEvent() || Long.compareUnsigned(position.ts(), snapshot().lastTs()) > 0) {
            return;
        }
        Group group = groups.get(position.ts());
        if (group == null || position.opIndex() >= group.entries().size()) {
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
                    log.append(new Change(Op.DROP, db, coll, null, null, null, null, null, null, false));
                }
            }

            @Override
            public Cursor createCursor(Document changeStream, String namespace, Aggregation aggregation) {
                throw new IllegalStateException("change streams are opened by StandInBackend");
            }
        };
    }
}
