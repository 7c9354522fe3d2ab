package relay.standin;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.NoopOplog;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * A memory collection that records its writes in the change log. The storage hooks see every write with the
 * document before and after it (which mongo-java-server's Oplog callbacks do not get, and findAndModify does not
 * call at all), so inserts, updates, replaces and deletes all become documented change events. Inside a
 * transaction each write also leaves an undo step, so an abort restores the documents without change events.
 */
final class StandInCollection extends MemoryCollection {

    /** The update spec of the update running on this thread: tells a replace from an update. */
    private static final ThreadLocal<Object> CURRENT_UPDATE = new ThreadLocal<>();

    /** changeStreamPreAndPostImages.enabled (create/collMod): keep images for updates and deletes. */
    private volatile boolean keepImages;

    StandInCollection(MongoDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
        super(database, name, options, cursors);
    }

    void setKeepImages(boolean keepImages) {
        this.keepImages = keepImages;
    }

    boolean keepsImages() {
        return keepImages;
    }

    @Override
    public Document updateDocuments(Document selector, Document update, ArrayFilters arrayFilters, boolean multi,
                                    boolean upsert, Oplog oplog) {
        return withUpdateSpec(update, () -> super.updateDocuments(selector, update, arrayFilters, multi, upsert, oplog));
    }

    @Override
    public Document findAndModify(Document query) {
        return withUpdateSpec(query.get("update"), () -> super.findAndModify(query));
    }

    /**
     * An update with an aggregation pipeline ({@code u: [...]}), which mongo-java-server does not run: each matched
     * document goes through the pipeline and is written back as a whole; its change event is an update whose
     * updateDescription compares the top-level fields. Atomic per collection (the collection's lock is held).
     *
     * @return {matched, modified, upsertedId (or null), before, after} of the last document written
     */
    synchronized PipelineUpdates.Result updateWithPipeline(Document selector, List<Document> pipeline, Document sort,
                                                           boolean multi, boolean upsert,
                                                           java.util.function.UnaryOperator<Document> run) {
        Document query = new Document("query", selector);
        if (sort != null) {
            query.append("orderby", sort);
        }
        List<Document> matches = new ArrayList<>();
        for (Document document : handleQuery(query, 0, multi ? 0 : 1)) {
            matches.add(document.cloneDeeply());
        }
        PipelineUpdates.Result result = new PipelineUpdates.Result();
        for (Document before : matches) {
            Document after = PipelineUpdates.keepId(before, run.apply(before.cloneDeeply()));
            result.matched++;
            result.before = before;
            result.after = after;
            if (!after.equals(before)) {
                result.modified++;
                withUpdateSpec(pipeline, () -> super.updateDocuments(new Document("_id", before.get("_id")), after,
                    ArrayFilters.empty(), false, false, NoopOplog.get()));
            }
        }
        if (matches.isEmpty() && upsert) {
            Document after = run.apply(PipelineUpdates.seedFromSelector(selector));
            addDocument(after);
            result.upsertedId = after.get("_id");
            result.after = after;
        }
        return result;
    }

    private static Document withUpdateSpec(Object spec, Supplier<Document> write) {
        Object outer = CURRENT_UPDATE.get();
        CURRENT_UPDATE.set(spec);
        try {
            return write.get();
        } finally {
            CURRENT_UPDATE.set(outer);
        }
    }

    @Override
    protected Integer addDocumentInternal(Document document) {
        Integer position = super.addDocumentInternal(document);
        Object id = document.get("_id");
        record(ChangeLog.Op.INSERT, id, document.cloneDeeply(), null, null);
        Transactions.onWrite(() -> deleteDocuments(new Document("_id", id), 1, NoopOplog.get()));
        return position;
    }

    @Override
    protected void handleUpdate(Integer position, Document before, Document after) {
        super.handleUpdate(position, before, after);
        Object spec = CURRENT_UPDATE.get();
        Document post = after.cloneDeeply();
        if (UpdateDescriptions.isReplacement(spec)) {
            record(ChangeLog.Op.REPLACE, after.get("_id"), post, before, null);
        } else {
            Document description = UpdateDescriptions.describe(before, after, spec);
            record(ChangeLog.Op.UPDATE, after.get("_id"), keepImages ? post : null, before, description);
        }
        Document restore = before.cloneDeeply();
        Transactions.onWrite(() -> super.updateDocuments(new Document("_id", restore.get("_id")), restore,
            ArrayFilters.empty(), false, false, NoopOplog.get()));
    }

    @Override
    protected void removeDocument(Integer position) {
        Document removed = getDocument(position);
        super.removeDocument(position);
        record(ChangeLog.Op.DELETE, removed.get("_id"), null, removed, null);
        Document restore = removed.cloneDeeply();
        Transactions.onWrite(() -> addDocument(restore));
    }

    private void record(ChangeLog.Op op, Object id, Document post, Document pre, Document updateDescription) {
        if (!ChangeLog.isCaptured(getDatabaseName(), getCollectionName()) || Transactions.isUndoing()) {
            return;
        }
        boolean images = keepImages;
        ((StandInDatabase) getDatabase()).changeLog().append(new ChangeLog.Change(op, getDatabaseName(),
            getCollectionName(), id, post, images ? pre : null, updateDescription, null, null, images));
    }
}
