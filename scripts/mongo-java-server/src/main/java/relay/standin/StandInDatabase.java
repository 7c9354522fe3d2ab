package relay.standin;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.DatabaseResolver;
import de.bwaldvogel.mongo.backend.DefaultQueryMatcher;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.NoopOplog;
import de.bwaldvogel.mongo.oplog.Oplog;
import io.netty.channel.Channel;

/**
 * A memory database whose collections record change events, plus what mongo-java-server lacks and the relay's
 * tests use: collMod (TTL expireAfterSeconds, changeStreamPreAndPostImages) and TTL expiry.
 */
final class StandInDatabase extends MemoryDatabase {

    /** Generic command fields that collMod may carry besides its options. */
    private static final Set<String> GENERIC_FIELDS = Set.of("collMod", "lsid", "txnNumber", "writeConcern", "comment",
        "maxTimeMS", "apiVersion", "apiStrict", "apiDeprecationErrors");

    /** mongod's batchedDeletesTargetBatchDocs. */
    private static final int BATCHED_DELETE_DOCS = 100;

    private final ChangeLog changeLog;

    StandInDatabase(String name, CursorRegistry cursors, ChangeLog changeLog) {
        super(name, cursors);
        this.changeLog = changeLog;
    }

    ChangeLog changeLog() {
        return changeLog;
    }

    @Override
    protected MemoryCollection openOrCreateCollection(String name, CollectionOptions options) {
        return new StandInCollection(this, name, options, cursorRegistry);
    }

    @Override
    public Document handleCommand(Channel channel, String command, Document query, DatabaseResolver resolver,
                                  Oplog oplog) {
        if (command.equalsIgnoreCase("collMod")) {
            return collMod(query);
        }
        if (command.equalsIgnoreCase("update") && query.get("updates") instanceof List<?> updates
            && updates.stream().anyMatch(u -> u instanceof Document d && PipelineUpdates.isPipeline(d.get("u")))) {
            return PipelineUpdates.update(this, query, changeLog.clusterTime(), resolver,
                single -> super.handleCommand(channel, command, single, resolver, oplog));
        }
        if (command.equalsIgnoreCase("findAndModify") && PipelineUpdates.isPipeline(query.get("update"))) {
            return PipelineUpdates.findAndModify(this, query, changeLog.clusterTime(), resolver);
        }
        if (command.equalsIgnoreCase("delete") && query.get("deletes") instanceof List<?> deletes
            && deletes.stream().anyMatch(StandInDatabase::isMultiDelete)) {
            return batchedDelete(channel, query, resolver, oplog);
        }
        if (command.equalsIgnoreCase("drop") && resolveCollection(query.get(command).toString(), false) == null) {
            // MongoDB 7.0 (what hello reports) answers ok to dropping a missing collection.
            return new Document("ns", getDatabaseName() + "." + query.get(command)).append("ok", 1.0);
        }
        Document response = super.handleCommand(channel, command, query, resolver, oplog);
        if (command.equalsIgnoreCase("listCollections") && query.get("filter") instanceof Document) {
            filterFirstBatch(response, (Document) query.get("filter")); // mongo-java-server ignores the filter
        }
        if (command.equalsIgnoreCase("create") && query.get("changeStreamPreAndPostImages") instanceof Document) {
            standInCollection(query.get(command).toString()).setKeepImages(imagesEnabled(query));
        }
        return response;
    }

    /** deleteMany (limit 0): mongod 6.1+ deletes in batches, each logged as one applyOps entry of up to 100 deletes. */
    private static boolean isMultiDelete(Object delete) {
        return delete instanceof Document d && d.get("limit") instanceof Number limit && limit.intValue() == 0;
    }

    private Document batchedDelete(Channel channel, Document query, DatabaseResolver resolver, Oplog oplog) {
        int n = 0;
        for (Object delete : (List<?>) query.get("deletes")) {
            Document single = new Document(query);
            single.put("deletes", List.of(delete));
            java.util.function.Supplier<Document> run = () -> super.handleCommand(channel, "delete", single, resolver,
                oplog);
            boolean batched = isMultiDelete(delete) && !keepsImages(query.get("delete").toString());
            Document response = batched ? changeLog.batchedDeletes(BATCHED_DELETE_DOCS, run) : run.get();
            n += ((Number) response.get("n")).intValue();
        }
        return new Document("n", n).append("ok", 1.0);
    }

    /** mongod does not batch deletes on collections with changeStreamPreAndPostImages. */
    private boolean keepsImages(String name) {
        return resolveCollection(name, false) instanceof StandInCollection collection && collection.keepsImages();
    }

    /** The collection a write goes to, created if missing (as an update or upsert does on mongod). */
    StandInCollection collectionForWrite(String name) {
        return (StandInCollection) resolveOrCreateCollection(name);
    }

    @SuppressWarnings("unchecked")
    private static void filterFirstBatch(Document response, Document filter) {
        Document cursor = (Document) response.get("cursor");
        List<Document> batch = (List<Document>) cursor.get("firstBatch");
        DefaultQueryMatcher matcher = new DefaultQueryMatcher();
        cursor.put("firstBatch", batch.stream().filter(collection -> matcher.matches(collection, filter)).toList());
    }

    private Document collMod(Document query) {
        String name = query.get("collMod").toString();
        StandInCollection collection = standInCollection(name);
        Document response = new Document();
        for (String option : query.keySet()) {
            if (option.startsWith("$") || GENERIC_FIELDS.contains(option)) {
                continue;
            }
            switch (option) {
                case "index" -> changeIndexTtl(collection, (Document) query.get(option), response);
                case "changeStreamPreAndPostImages" -> collection.setKeepImages(imagesEnabled(query));
                default -> throw new MongoServerError(238, "NotImplemented",
                    "collMod option '" + option + "' is not supported by the mongo-java-server stand-in");
            }
        }
        Utils.markOkay(response);
        return response;
    }

    private void changeIndexTtl(StandInCollection collection, Document spec, Document response) {
        Document selector = new Document("ns", collection.getFullName());
        if (spec.get("name") instanceof String) {
            selector.append("name", spec.get("name"));
        } else if (spec.get("keyPattern") instanceof Document) {
            selector.append("key", spec.get("keyPattern"));
        } else {
            throw new MongoServerError(9, "FailedToParse", "collMod index needs 'name' or 'keyPattern'");
        }
        MongoCollection<Integer> indexCollection = indexes.get();
        Document index = null;
        for (Document candidate : indexCollection == null ? List.<Document>of() : indexCollection.handleQuery(selector)) {
            index = candidate;
        }
        if (index == null) {
            throw new MongoServerError(27, "IndexNotFound", "cannot find index " + spec + " for ns " + collection.getFullName());
        }
        if (!(spec.get("expireAfterSeconds") instanceof Number)) {
            throw new MongoServerError(238, "NotImplemented",
                "collMod index: only expireAfterSeconds is supported by the mongo-java-server stand-in");
        }
        Object newValue = spec.get("expireAfterSeconds");
        if (index.get("expireAfterSeconds") != null) {
            response.put("expireAfterSeconds_old", index.get("expireAfterSeconds"));
        }
        response.put("expireAfterSeconds_new", newValue);
        indexCollection.updateDocuments(selector, new Document("$set", new Document("expireAfterSeconds", newValue)),
            ArrayFilters.empty(), false, false, NoopOplog.get());
    }

    /** Deletes documents whose TTL-indexed date is older than expireAfterSeconds (mongod's TTL monitor pass). */
    void expireTtl(Instant now, Oplog oplog) {
        MongoCollection<Integer> indexCollection = indexes.get();
        if (indexCollection == null) {
            return;
        }
        List<Document> ttlIndexes = new ArrayList<>();
        for (Document index : indexCollection.queryAll()) {
            if (index.get("expireAfterSeconds") instanceof Number && ((Document) index.get("key")).size() == 1) {
                ttlIndexes.add(index);
            }
        }
        for (Document index : ttlIndexes) {
            String ns = index.get("ns").toString();
            MongoCollection<Integer> collection = resolveCollection(Utils.getCollectionNameFromFullName(ns), false);
            if (collection == null) {
                continue;
            }
            String field = ((Document) index.get("key")).keySet().iterator().next();
            long seconds = ((Number) index.get("expireAfterSeconds")).longValue();
            Instant cutoff = now.minusSeconds(seconds);
            // The TTL monitor deletes in batches too (one applyOps entry per batch).
            changeLog.batchedDeletes(BATCHED_DELETE_DOCS,
                () -> collection.deleteDocuments(new Document(field, new Document("$lt", cutoff)), 0, oplog));
        }
    }

    private StandInCollection standInCollection(String name) {
        MongoCollection<Integer> collection = resolveCollection(name, false);
        if (collection == null) {
            throw new MongoServerError(26, "NamespaceNotFound", "ns does not exist: " + getDatabaseName() + "." + name);
        }
        return (StandInCollection) collection;
    }

    private static boolean imagesEnabled(Document query) {
        Object option = query.get("changeStreamPreAndPostImages");
        return option instanceof Document && Utils.isTrue(((Document) option).get("enabled"));
    }
}
