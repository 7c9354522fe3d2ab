package relay.standin;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;

/**
 * One open change stream: its scope (collection, database or deployment), options, user pipeline and position.
 * A batch seeks to the position in the change log, renders the entries as documented change events, feeds them
 * through the user's stages (mongo-java-server's own aggregation code) and reports the position reached as
 * postBatchResumeToken, also when nothing matched.
 */
final class ChangeStreamCursor {

    private static final Set<String> INTERNAL_DATABASES = Set.of("admin", "config", "local");
    /** Keep a reply well below the 16 MiB BSON limit (mongod's batches are size-capped too). */
    private static final int MAX_BATCH_BYTES = 8 * 1024 * 1024;

    final long id;
    final String ns;
    private final String db;
    private final String coll;
    private final ChangeStreamOptions options;
    private final Aggregation userStages;
    private final StandInBackend backend;
    private Position position;
    private boolean closed;
    /** The newest log entry the last scan saw; a getMore waits for anything newer. */
    private long scannedLastTs;
    private volatile long lastUsedNanos = System.nanoTime();

    ChangeStreamCursor(long id, String db, String coll, ChangeStreamOptions options, Aggregation userStages,
                       Position start, StandInBackend backend) {
        this.id = id;
        this.db = db;
        this.coll = coll;
        this.options = options;
        this.userStages = userStages;
        this.position = start;
        this.backend = backend;
        this.ns = coll != null ? db + "." + coll : db + ".$cmd.aggregate";
    }

    boolean isClosed() {
        return closed;
    }

    long idleNanos() {
        return System.nanoTime() - lastUsedNanos;
    }

    /** The first batch: what is already there, without waiting (like mongod's aggregate). */
    synchronized Document firstBatch(int batchSize) {
        List<Document> batch = scan(batchSize);
        return response("firstBatch", batch);
    }

    /** getMore: returns as soon as something matched, or after maxTimeMS with an empty batch and a newer token. */
    synchronized Document getMore(int batchSize, long maxTimeMS) throws InterruptedException {
        lastUsedNanos = System.nanoTime();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(maxTimeMS);
        List<Document> batch = scan(batchSize);
        while (batch.isEmpty() && !closed) {
            boolean appended = backend.changeLog().awaitAppend(scannedLastTs, deadline);
            batch = scan(batchSize); // after a timeout, this pass moves the high-water mark to "now"
            if (!appended) {
                break;
            }
        }
        lastUsedNanos = System.nanoTime();
        return response("nextBatch", batch);
    }

    private Document response(String batchField, List<Document> batch) {
        Document cursor = new Document(batchField, batch)
            .append("postBatchResumeToken", position.toToken())
            .append("id", closed ? 0L : id)
            .append("ns", ns);
        return new Document("cursor", cursor).append("ok", 1.0);
    }

    private List<Document> scan(int batchSize) {
        ChangeLog log = backend.changeLog();
        ChangeLog.Snapshot snapshot = log.snapshot();
        log.checkResumable(position);
        scannedLastTs = snapshot.lastTs();
        List<Document> batch = new ArrayList<>();
        int bytes = 0;
        for (ChangeLog.Entry entry : log.between(position.ts(), snapshot.lastTs())) {
            for (int kind : kindsFor(entry)) {
                Position eventPosition = new Position(entry.ts(), kind);
                if (!eventPosition.isAfter(position)) {
                    continue;
                }
                position = eventPosition;
                for (Document event : applyUserStages(render(entry, kind))) {
                    batch.add(event);
                    bytes += sizeOf(event);
                }
                if (kind == Position.INVALIDATE) {
                    closed = true;
                    return batch;
                }
                if ((batchSize > 0 && batch.size() >= batchSize) || bytes >= MAX_BATCH_BYTES) {
                    return batch;
                }
            }
        }
        Position scanned = new Position(snapshot.highWaterMark(), Position.SCANNED);
        if (scanned.isAfter(position)) {
            position = scanned;
        }
        return batch;
    }

    /** Which events (event, invalidate, both or none) an entry is for this stream. */
    private int[] kindsFor(ChangeLog.Entry e) {
        boolean internal = INTERNAL_DATABASES.contains(e.db())
            && (e.toDb() == null || INTERNAL_DATABASES.contains(e.toDb()));
        if (db == null) { // deployment
            return internal ? new int[0] : new int[] {Position.EVENT};
        }
        boolean inDb = e.db().equals(db) || db.equals(e.toDb());
        if (coll == null) { // database
            if (!inDb) {
                return new int[0];
            }
            return e.op() == ChangeLog.Op.DROP_DATABASE
                ? new int[] {Position.EVENT, Position.INVALIDATE}
                : new int[] {Position.EVENT};
        }
        boolean source = e.db().equals(db) && coll.equals(e.coll());
        boolean target = db.equals(e.toDb()) && coll.equals(e.toColl());
        switch (e.op()) {
            case DROP_DATABASE:
                return e.db().equals(db) ? new int[] {Position.INVALIDATE} : new int[0];
            case DROP:
            case RENAME:
                return source || target ? new int[] {Position.EVENT, Position.INVALIDATE} : new int[0];
            default:
                return source ? new int[] {Position.EVENT} : new int[0];
        }
    }

    private Document render(ChangeLog.Entry e, int kind) {
        Position at = new Position(e.ts(), kind);
        Document event = new Document("_id", at.toToken())
            .append("operationType", kind == Position.INVALIDATE ? "invalidate" : e.op().operationType)
            .append("clusterTime", new BsonTimestamp(e.ts()))
            .append("wallTime", e.wall());
        if (kind == Position.INVALIDATE) {
            return event;
        }
        if (e.op() == ChangeLog.Op.INSERT || e.op() == ChangeLog.Op.REPLACE) {
            event.append("fullDocument", e.post().cloneDeeply());
        }
        Document ns = new Document("db", e.db());
        if (e.coll() != null) {
            ns.append("coll", e.coll());
        }
        event.append("ns", ns);
        if (e.op() == ChangeLog.Op.RENAME) {
            event.append("to", new Document("db", e.toDb()).append("coll", e.toColl()));
        }
        if (e.id() != null) {
            event.append("documentKey", new Document("_id", e.id()));
        }
        if (e.op() == ChangeLog.Op.UPDATE) {
            event.append("updateDescription", e.updateDescription().cloneDeeply());
            Document full = fullDocumentForUpdate(e);
            if (!options.fullDocument().equals("default")) {
                event.append("fullDocument", full);
            }
        }
        boolean hasPreImage = e.op() == ChangeLog.Op.UPDATE || e.op() == ChangeLog.Op.REPLACE
            || e.op() == ChangeLog.Op.DELETE;
        if (hasPreImage && !options.fullDocumentBeforeChange().equals("off")) {
            event.append("fullDocumentBeforeChange", image(e, e.pre(), options.fullDocumentBeforeChange(), "pre"));
        }
        return event;
    }

    private Document fullDocumentForUpdate(ChangeLog.Entry e) {
        switch (options.fullDocument()) {
            case "updateLookup":
                return backend.lookup(e.db(), e.coll(), e.id());
            case "whenAvailable":
            case "required":
                return image(e, e.post(), options.fullDocument(), "post");
            default:
                return null;
        }
    }

    private static Document image(ChangeLog.Entry e, Document image, String mode, String which) {
        if (e.imagesKept() && image != null) {
            return image.cloneDeeply();
        }
        if (mode.equals("required")) {
            String events = which.equals("pre") ? "update, delete and replace events" : "update events";
            throw new MongoServerError(47, "NoMatchingDocument", "Change stream was configured to require a "
                + which + "-image for all " + events + ", but the " + which + "-image was not found for event: "
                + new Position(e.ts(), Position.EVENT).toToken());
        }
        return null;
    }

    private List<Document> applyUserStages(Document event) {
        Object token = event.get("_id");
        List<Document> out = userStages.runStagesAsStream(Stream.of(event)).collect(Collectors.toList());
        for (Document result : out) {
            if (!token.equals(result.get("_id"))) {
                throw new MongoServerError(280, "ChangeStreamFatalError", "Encountered an event whose _id field, "
                    + "which contains the resume token, was modified by the pipeline. Modifying the _id field of an "
                    + "event makes it impossible to resume the stream from that point.");
            }
        }
        return out;
    }

    private static int sizeOf(Document document) {
        ByteBuf buffer = Unpooled.buffer();
        try {
            BsonEncoder.encodeDocument(document, buffer);
            return buffer.writerIndex();
        } finally {
            buffer.release();
        }
    }
}
