package relay.standin;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * A memory collection that records its writes in the change log. The storage hooks see every write with the
 * document before and after it (which mongo-java-server's Oplog callbacks do not get, and findAndModify does not
 * call at all), so inserts, updates, replaces and deletes all become documented change events.
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

    @Override
    public Document updateDocuments(Document selector, Document update, ArrayFilters arrayFilters, boolean multi,
                                    boolean upsert, Oplog oplog) {
        return withUpdateSpec(update, () -> super.updateDocuments(selector, update, arrayFilters, multi, upsert, oplog));
    }

    @Override
    public Document findAndModify(Document query) {
        return withUpdateSpec(query.get("update"), () -> super.findAndModify(query));
    }

    private static Document withUpdateSpec(Object spec, java.util.function.Supplier<Document> write) {
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
        record(ChangeLog.Op.INSERT, document.get("_id"), document.cloneDeeply(), null, null);
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
    }

    @Override
    protected void removeDocument(Integer position) {
        Document removed = getDocument(position);
        super.removeDocument(position);
        record(ChangeLog.Op.DELETE, removed.get("_id"), null, removed, null);
    }

    private void record(ChangeLog.Op op, Object id, Document post, Document pre, Document updateDescription) {
        if (!ChangeLog.isCaptured(getDatabaseName(), getCollectionName())) {
            return;
        }
        boolean images = keepImages;
        ((StandInDatabase) getDatabase()).changeLog().append(op, getDatabaseName(), getCollectionName(), id, post,
            images ? pre : null, updateDescription, null, null, images);
    }
}
