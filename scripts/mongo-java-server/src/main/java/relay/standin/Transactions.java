package relay.standin;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * Multi-document transactions, as far as change streams can tell (enabled with --transactions): the operations of a
 * committed transaction appear as one oplog entry, so their events share a cluster time, carry txnOpIndex in their
 * tokens and {@code lsid}/{@code txnNumber} in the event; an aborted (or expired) transaction's writes are undone and
 * never appear. What this does NOT give: isolation (other sessions see uncommitted writes), write conflicts, or
 * snapshot reads. Code that needs those must be tested on a real mongod.
 */
final class Transactions {

    private static final Logger log = LoggerFactory.getLogger(Transactions.class);
    /** The transaction whose command runs on this thread; its writes leave undo steps. */
    private static final ThreadLocal<Transaction> CURRENT = new ThreadLocal<>();
    private static final ThreadLocal<Boolean> UNDOING = ThreadLocal.withInitial(() -> false);

    static final class Transaction {
        final Document lsid;
        final long txnNumber;
        final ChangeLog.Batch batch;
        private final Deque<Runnable> undo = new ArrayDeque<>();
        private final long startedNanos = System.nanoTime();

        private Transaction(Document lsid, long txnNumber, ChangeLog.Batch batch) {
            this.lsid = lsid;
            this.txnNumber = txnNumber;
            this.batch = batch;
        }
    }

    private final ChangeLog changeLog;
    private final long lifetimeNanos;
    /** Open transactions by session id; the last committed txnNumber per session (commit is retryable). */
    private final Map<Object, Transaction> open = new ConcurrentHashMap<>();
    private final Map<Object, Long> committed = new ConcurrentHashMap<>();

    Transactions(ChangeLog changeLog, long lifetimeSeconds) {
        this.changeLog = changeLog;
        this.lifetimeNanos = lifetimeSeconds * 1_000_000_000L;
    }

    /** Called by a collection after each write: inside a transaction, remembers how to undo it. */
    static void onWrite(Runnable undoStep) {
        Transaction transaction = CURRENT.get();
        if (transaction != null && !UNDOING.get()) {
            transaction.undo.push(undoStep);
        }
    }

    static boolean isUndoing() {
        return UNDOING.get();
    }

    /** Runs a command that carries {@code autocommit: false}: starts or continues its transaction. */
    Document run(Document command, Supplier<Document> body) {
        Transaction transaction = transactionOf(command);
        Transaction outer = CURRENT.get();
        CURRENT.set(transaction);
        try {
            return changeLog.collectingInto(transaction.batch, body);
        } finally {
            CURRENT.set(outer);
        }
    }

    Document commit(Document command) {
        Object session = sessionId(command);
        long txnNumber = txnNumber(command);
        Transaction transaction = open.get(session);
        if (transaction == null || transaction.txnNumber != txnNumber) {
            if (Long.valueOf(txnNumber).equals(committed.get(session))) {
                return new Document("ok", 1.0); // a retried commit of a committed transaction
            }
            throw noSuchTransaction(txnNumber);
        }
        open.remove(session);
        transaction.batch.flush();
        committed.put(session, txnNumber);
        return new Document("ok", 1.0);
    }

    Document abort(Document command) {
        Object session = sessionId(command);
        long txnNumber = txnNumber(command);
        Transaction transaction = open.get(session);
        if (transaction == null || transaction.txnNumber != txnNumber) {
            throw noSuchTransaction(txnNumber);
        }
        abort(session, transaction);
        return new Document("ok", 1.0);
    }

    /** endSessions/killSessions: their open transactions are aborted. */
    void endSessions(Iterable<?> sessions) {
        for (Object session : sessions) {
            if (session instanceof Document document) {
                Transaction transaction = open.get(document.get("id"));
                if (transaction != null) {
                    abort(document.get("id"), transaction);
                }
            }
        }
    }

    /** Like mongod's transactionLifetimeLimitSeconds: a transaction left open (its client died) is aborted. */
    void abortExpired() {
        for (Map.Entry<Object, Transaction> entry : open.entrySet()) {
            if (System.nanoTime() - entry.getValue().startedNanos > lifetimeNanos) {
                log.info("aborting transaction {} of session {}: older than the transaction lifetime limit",
                    entry.getValue().txnNumber, entry.getKey());
                abort(entry.getKey(), entry.getValue());
            }
        }
    }

    private synchronized void abort(Object session, Transaction transaction) {
        if (!open.remove(session, transaction)) {
            return;
        }
        transaction.batch.discard();
        UNDOING.set(true);
        try {
            while (!transaction.undo.isEmpty()) {
                transaction.undo.pop().run();
            }
        } finally {
            UNDOING.set(false);
        }
    }

    private Transaction transactionOf(Document command) {
        Object session = sessionId(command);
        long txnNumber = txnNumber(command);
        Transaction current = open.get(session);
        if (Boolean.TRUE.equals(command.get("startTransaction"))) {
            if (current != null) {
                if (txnNumber <= current.txnNumber) {
                    throw new MongoServerError(225, "TransactionTooOld", "Cannot start transaction " + txnNumber
                        + " on session because a newer transaction " + current.txnNumber + " has already started");
                }
                abort(session, current); // a new transaction number ends the previous one, as on mongod
            }
            Transaction started = new Transaction((Document) command.get("lsid"), txnNumber,
                changeLog.transactionBatch((Document) command.get("lsid"), txnNumber));
            open.put(session, started);
            return started;
        }
        if (current == null || current.txnNumber != txnNumber) {
            throw noSuchTransaction(txnNumber);
        }
        return current;
    }

    private static Object sessionId(Document command) {
        if (!(command.get("lsid") instanceof Document lsid) || lsid.get("id") == null) {
            throw new MongoServerError(72, "InvalidOptions", "a transaction needs a session (lsid)");
        }
        return lsid.get("id");
    }

    private static long txnNumber(Document command) {
        if (!(command.get("txnNumber") instanceof Number number)) {
            throw new MongoServerError(72, "InvalidOptions", "a transaction needs a txnNumber");
        }
        return number.longValue();
    }

    private static MongoServerError noSuchTransaction(long txnNumber) {
        MongoServerError error = new MongoServerError(251, "NoSuchTransaction",
            "Transaction with { txnNumber: " + txnNumber + " } has been aborted.");
        return error;
    }
}
