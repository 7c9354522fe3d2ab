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

/**
 * One open change stream: its scope (collection, database or deployment), options, user pipeline and position.
 * A batch seeks to the position in the change log, renders the entries as documented change events, feeds them
 * through the user's stages (mongo-java-server's own aggregation code), then splits or refuses events over the
 * size limit, and reports postBatchResumeToken the way mongod does: the token of the last event returned, or the
 * high-water mark of the newest oplog entry scanned when that is newer.
 */
final class ChangeStreamCursor {

    private static final Set<String> INTERNAL_DATABASES = Set.of("admin", "config", "local");
    /** mongod's cursor batches stop at 16 MiB (a batch always holds at least one event). */
    private static final int MAX_BATCH_BYTES = 16 * 1024 * 1024;

    /** An event (or fragment) ready to be returned, at its position. */
    private record Output(Position position, Document document, int size) {
    }

    final long id;
    final String ns;
    private final String db;
    private final String coll;
    private final ChangeStreamOptions options;
    private final Aggregation userStages;
    private final boolean splitLargeEvents;
    private final StandInBackend backend;
    /** Everything at or before this position has been returned or skipped. */
    private Position position;
    /** What postBatchResumeToken says: the last event returned, or a newer high-water mark. */
    private Position reported;
    private boolean closed;
    /** The newest log entry the last scan saw; a getMore waits for anything newer. */
    private long scannedLastTs;
    private volatile long lastUsedNanos = System.nanoTime();

    ChangeStreamCursor(long id, String db, String coll, ChangeStreamOptions options, Aggregation userStages,
                       boolean splitLargeEvents, Position start, StandInBackend backend) {
        this.id = id;
        this.db = db;
        this.coll = coll;
        this.options = options;
        this.userStages = userStages;
        this.splitLargeEvents = splitLargeEvents;
        this.position = start;
        this.reported = start;
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
        List<Document> batch = scan(batchSize, false);
        return response("firstBatch", batch);
    }

    /** getMore: returns as soon as something matched, or after maxTimeMS with an empty batch. */
    synchronized Document getMore(int batchSize, long maxTimeMS) throws InterruptedException {
        lastUsedNanos = System.nanoTime();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(maxTimeMS);
        List<Document> batch = scan(batchSize, true);
        while (batch.isEmpty() && !closed) {
            if (!backend.changeLog().awaitAppend(scannedLastTs, deadline)) {
                break;
            }
            batch = scan(batchSize, true);
        }
        lastUsedNanos = System.nanoTime();
        return response("nextBatch", batch);
    }

    private Document response(String batchField, List<Document> batch) {
        Document cursor = new Document(batchField, batch)
            .append("postBatchResumeToken", reported.toToken())
            .append("id", closed ? 0L : id)
            .append("ns", ns);
        return new Document("cursor", cursor).append("ok", 1.0);
    }

    private List<Document> scan(int batchSize, boolean liveCursor) {
        ChangeLog log = backend.changeLog();
        ChangeLog.Snapshot snapshot = log.snapshot();
        log.checkResumable(position, liveCursor);
        scannedLastTs = snapshot.lastTs();
        List<Document> batch = new ArrayList<>();
        int bytes = 0;
        for (ChangeLog.Group group : log.between(position.ts(), snapshot.lastTs())) {
            for (ChangeLog.Entry entry : group.entries()) {
                for (Position event : eventsFor(entry)) {
                    int order = event.compareTo(position.wholeEvent());
                    if (order < 0 || (order == 0 && position.fragment() == 0)) {
                        continue; // returned (or skipped) already
                    }
                    for (Output output : outputs(entry, event)) {
                        int size = output.size();
                        if (!batch.isEmpty() && bytes + size > MAX_BATCH_BYTES) {
                            return batch; // the rest goes into the next batch, from this position on
                        }
                        batch.add(output.document());
                        bytes += size;
                        position = output.position();
                        reported = output.position();
                        if (batchSize > 0 && batch.size() >= batchSize) {
                            return batch;
                        }
                    }
                    position = position.isAfter(event) ? position : event; // also when the pipeline dropped it
                    if (event.invalidate()) {
                        closed = true;
                        return batch;
                    }
                }
            }
        }
        Position scanned = Position.scanned(snapshot.lastTs());
        if (scanned.isAfter(position)) {
            position = scanned;
        }
        // mongod moves the post-batch token to a high-water mark only when the scan reached a newer cluster time.
        if (Long.compareUnsigned(snapshot.lastTs(), reported.ts()) > 0) {
            reported = Position.at(snapshot.lastTs());
        }
        return batch;
    }

    /** Which events (the change, its invalidate, both or none) an entry is for this stream. */
    private List<Position> eventsFor(ChangeLog.Entry e) {
        Position event = e.position();
        ChangeLog.Change c = e.change();
        boolean internal = INTERNAL_DATABASES.contains(c.db())
            && (c.toDb() == null || INTERNAL_DATABASES.contains(c.toDb()));
        if (db == null) { // deployment
            return internal ? List.of() : List.of(event);
        }
        boolean inDb = c.db().equals(db) || db.equals(c.toDb());
        if (coll == null) { // database
            if (!inDb) {
                return List.of();
            }
            return c.op() == ChangeLog.Op.DROP_DATABASE ? List.of(event, event.invalidateOf()) : List.of(event);
        }
        boolean source = c.db().equals(db) && coll.equals(c.coll());
        boolean target = db.equals(c.toDb()) && coll.equals(c.toColl());
        switch (c.op()) {
            case DROP_DATABASE:
                return c.db().equals(db) ? List.of(event.invalidateOf()) : List.of();
            case DROP:
            case RENAME:
                return source || target ? List.of(event, event.invalidateOf()) : List.of();
            default:
                return source ? List.of(event) : List.of();
        }
    }

    /**
     * The documents an event becomes after the user's stages: itself, nothing (filtered), or its fragments
     * ($changeStreamSplitLargeEvent) — only those after the stream's position, which may be a fragment of it.
     */
    private List<Output> outputs(ChangeLog.Entry entry, Position event) {
        List<Output> outputs = new ArrayList<>();
        for (Document document : applyUserStages(render(entry, event))) {
            int size = SizeLimits.sizeOf(document); // encoded once: the limit and the batch size both need it
            if (splitLargeEvents && SizeLimits.needsSplit(document, size)) {
                List<Document> fragments = SizeLimits.split(document, event);
                for (int i = 0; i < fragments.size(); i++) {
                    Document fragment = fragments.get(i);
                    outputs.add(new Output(event.fragment(i + 1), fragment, SizeLimits.sizeOf(fragment)));
                }
            } else {
                if (size > SizeLimits.MAX_INTERNAL_SIZE) {
                    throw SizeLimits.tooLarge(size, document);
                }
                outputs.add(new Output(event, document, size));
            }
        }
        if (position.fragment() > 0 && position.wholeEvent().equals(event)) {
            // Resuming from a fragment: the same pipeline must split this event the same way again.
            boolean found = outputs.stream().anyMatch(o -> o.position().equals(position));
            if (!found) {
                throw new MongoServerError(280, "ChangeStreamFatalError", "Attempted to resume from a split event, "
                    + "but the resumed stream produced a different split. Ensure that the pipeline used to resume is "
                    + "the same as the original");
            }
            outputs.removeIf(o -> !o.position().isAfter(position));
        }
        return outputs;
    }

    private Document render(ChangeLog.Entry entry, Position at) {
        ChangeLog.Change e = entry.change();
        Document event = new Document("_id", at.toToken())
            .append("operationType", at.invalidate() ? "invalidate" : e.op().operationType)
            .append("clusterTime", new BsonTimestamp(entry.ts()))
            .append("wallTime", entry.wall());
        if (at.invalidate()) {
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
            Document full = fullDocumentForUpdate(entry);
            if (!options.fullDocument().equals("default")) {
                event.append("fullDocument", full);
            }
        }
        boolean hasPreImage = e.op() == ChangeLog.Op.UPDATE || e.op() == ChangeLog.Op.REPLACE
            || e.op() == ChangeLog.Op.DELETE;
        if (hasPreImage && !options.fullDocumentBeforeChange().equals("off")) {
            event.append("fullDocumentBeforeChange", image(entry, e.pre(), options.fullDocumentBeforeChange(), "pre"));
        }
        if (entry.lsid() != null) {
            // mongod sets these on the events of a multi-document transaction only.
            event.append("lsid", entry.lsid().cloneDeeply()).append("txnNumber", entry.txnNumber());
        }
        return event;
    }

    private Document fullDocumentForUpdate(ChangeLog.Entry entry) {
        ChangeLog.Change e = entry.change();
        switch (options.fullDocument()) {
            case "updateLookup":
                return backend.lookup(e.db(), e.coll(), e.id());
            case "whenAvailable":
            case "required":
                return image(entry, e.post(), options.fullDocument(), "post");
            default:
                return null;
        }
    }

    private static Document image(ChangeLog.Entry entry, Document image, String mode, String which) {
        if (entry.change().imagesKept() && image != null) {
            return image.cloneDeeply();
        }
        if (mode.equals("required")) {
            String events = which.equals("pre") ? "update, delete and replace events" : "update events";
            throw new MongoServerError(47, "NoMatchingDocument", "Change stream was configured to require a "
                + which + "-image for all " + events + ", but the " + which + "-image was not found for event: "
                + entry.position().toToken());
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
}
