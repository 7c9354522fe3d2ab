package relay.standin;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.DatabaseResolver;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.NoopOplog;

/**
 * Updates with an aggregation pipeline ({@code update: {u: [...]}} and {@code findAndModify: {update: [...]}}),
 * which mongo-java-server does not support at all. As on mongod: only $addFields/$set, $project/$unset and
 * $replaceRoot/$replaceWith stages; {@code $$NOW} and {@code $$CLUSTER_TIME} are one value for the whole command
 * (so an expiry computed from $$NOW is the server's clock, not the client's); {@code _id} cannot change.
 */
final class PipelineUpdates {

    private static final Set<String> ALLOWED_STAGES = Set.of("$addFields", "$set", "$project", "$unset",
        "$replaceRoot", "$replaceWith");

    /** The outcome of one update statement. */
    static final class Result {
        int matched;
        int modified;
        Object upsertedId;
        Document before;
        Document after;
    }

    private PipelineUpdates() {
    }

    static boolean isPipeline(Object update) {
        return update instanceof List;
    }

    /** The update command: pipeline statements run here, the others as mongo-java-server runs them. */
    @SuppressWarnings("unchecked")
    static Document update(StandInDatabase database, Document command, long clusterTime, DatabaseResolver resolver,
                           UnaryOperator<Document> unchanged) {
        String name = command.get("update").toString();
        List<Document> updates = (List<Document>) command.get("updates");
        int n = 0;
        int modified = 0;
        List<Document> upserted = new ArrayList<>();
        List<Document> writeErrors = new ArrayList<>();
        for (int i = 0; i < updates.size(); i++) {
            Document statement = updates.get(i);
            try {
                Result result;
                if (isPipeline(statement.get("u"))) {
                    StandInCollection collection = database.collectionForWrite(name);
                    result = collection.updateWithPipeline((Document) statement.get("q"), stages(statement.get("u")),
                        null, Utils.isTrue(statement.get("multi")), Utils.isTrue(statement.get("upsert")),
                        runner(database, resolver, stages(statement.get("u")), clusterTime));
                } else {
                    Document single = new Document(command);
                    single.put("updates", List.of(statement));
                    single.remove("ordered");
                    Document response = unchanged.apply(single);
                    if (response.get("writeErrors") instanceof List<?> errors && !errors.isEmpty()) {
                        Document error = new Document((Document) errors.get(0));
                        error.put("index", i);
                        writeErrors.add(error);
                        if (Utils.isTrue(command.getOrDefault("ordered", true))) {
                            break;
                        }
                        continue;
                    }
                    result = new Result();
                    result.matched = ((Number) response.get("n")).intValue();
                    result.modified = ((Number) response.get("nModified")).intValue();
                    if (response.get("upserted") instanceof List<?> ids && !ids.isEmpty()) {
                        result.upsertedId = ((Document) ids.get(0)).get("_id");
                        result.matched = 0;
                    }
                }
                n += result.matched;
                modified += result.modified;
                if (result.upsertedId != null) {
                    n++;
                    upserted.add(new Document("index", i).append("_id", result.upsertedId));
                }
            } catch (MongoServerError e) {
                writeErrors.add(new Document("index", i).append("code", e.getCode())
                    .append("codeName", e.getCodeName()).append("errmsg", e.getMessageWithoutErrorCode()));
                if (Utils.isTrue(command.getOrDefault("ordered", true))) {
                    break;
                }
            }
        }
        Document response = new Document("n", n).append("nModified", modified);
        if (!upserted.isEmpty()) {
            response.append("upserted", upserted);
        }
        if (!writeErrors.isEmpty()) {
            response.append("writeErrors", writeErrors);
        }
        return response.append("ok", 1.0);
    }

    /** findAndModify with an update pipeline. */
    static Document findAndModify(StandInDatabase database, Document command, long clusterTime,
                                  DatabaseResolver resolver) {
        String name = command.get(command.keySet().iterator().next()).toString(); // findAndModify or findandmodify
        List<Document> stages = stages(command.get("update"));
        StandInCollection collection = database.collectionForWrite(name);
        Document selector = command.get("query") instanceof Document q ? q : new Document();
        Result result = collection.updateWithPipeline(selector, stages, (Document) command.get("sort"), false,
            Utils.isTrue(command.get("upsert")), runner(database, resolver, stages, clusterTime));
        Document lastErrorObject = new Document("n", result.matched + (result.upsertedId != null ? 1 : 0))
            .append("updatedExisting", result.matched > 0);
        if (result.upsertedId != null) {
            lastErrorObject.append("upserted", result.upsertedId);
        }
        Document value = Utils.isTrue(command.get("new")) ? result.after : result.before;
        if (value != null && command.get("fields") instanceof Document fields && !fields.isEmpty()) {
            value = runner(database, resolver, List.of(new Document("$project", fields)), clusterTime).apply(value);
        }
        return new Document("lastErrorObject", lastErrorObject).append("value", value).append("ok", 1.0);
    }

    @SuppressWarnings("unchecked")
    private static List<Document> stages(Object pipeline) {
        List<Document> stages = (List<Document>) pipeline;
        for (Document stage : stages) {
            String name = stage.keySet().iterator().next();
            if (!ALLOWED_STAGES.contains(name)) {
                throw new MongoServerError(72, "InvalidOptions", name + " is not allowed to be used within an update");
            }
        }
        return stages;
    }

    /** Runs the pipeline on one document, with $$NOW and $$CLUSTER_TIME fixed for the whole command. */
    private static UnaryOperator<Document> runner(StandInDatabase database, DatabaseResolver resolver,
                                                  List<Document> stages, long clusterTime) {
        Instant now = Instant.now();
        BsonTimestamp time = new BsonTimestamp(clusterTime);
        List<Document> bound = new ArrayList<>();
        for (Document stage : stages) {
            bound.add((Document) bindVariables(stage, now, time));
        }
        Aggregation aggregation = Aggregation.fromPipeline(StageAliases.resolve(bound), resolver, database, null,
            NoopOplog.get());
        return document -> aggregation.runStagesAsStream(Stream.of(document)).findFirst()
            .orElseThrow(() -> new MongoServerError(2, "BadValue", "the update pipeline produced no document"));
    }

    private static Object bindVariables(Object value, Instant now, BsonTimestamp clusterTime) {
        if ("$$NOW".equals(value)) {
            return now;
        }
        if ("$$CLUSTER_TIME".equals(value)) {
            return clusterTime;
        }
        if (value instanceof Document document) {
            Document bound = new Document();
            for (Map.Entry<String, Object> entry : document.entrySet()) {
                boolean literal = entry.getKey().equals("$literal");
                bound.put(entry.getKey(), literal ? entry.getValue() : bindVariables(entry.getValue(), now, clusterTime));
            }
            return bound;
        }
        if (value instanceof List<?> list) {
            List<Object> bound = new ArrayList<>();
            for (Object element : list) {
                bound.add(bindVariables(element, now, clusterTime));
            }
            return bound;
        }
        return value;
    }

    /** The pipeline's output keeps the document's _id; changing it fails as on mongod (66 ImmutableField). */
    static Document keepId(Document before, Document after) {
        Object id = before.get("_id");
        if (after.containsKey("_id") && !java.util.Objects.equals(after.get("_id"), id)) {
            throw new MongoServerError(66, "ImmutableField",
                "Performing an update on the path '_id' would modify the immutable field '_id'");
        }
        Document withId = new Document("_id", id);
        for (Map.Entry<String, Object> entry : after.entrySet()) {
            if (!entry.getKey().equals("_id")) {
                withId.put(entry.getKey(), entry.getValue());
            }
        }
        return withId;
    }

    /** An upsert's starting document: the equality conditions of the selector (top level and $and), like mongod. */
    static Document seedFromSelector(Document selector) {
        Document seed = new Document();
        addEqualities(selector, seed);
        if (!seed.containsKey("_id")) {
            Document withId = new Document("_id", new ObjectId());
            withId.putAll(seed);
            return withId;
        }
        return seed;
    }

    @SuppressWarnings("unchecked")
    private static void addEqualities(Document selector, Document seed) {
        for (Map.Entry<String, Object> entry : selector.entrySet()) {
            String key = entry.getKey();
            Object value = entry.getValue();
            if (key.equals("$and")) {
                for (Document part : (List<Document>) value) {
                    addEqualities(part, seed);
                }
            } else if (!key.startsWith("$") && !key.contains(".")) {
                if (value instanceof Document condition && condition.keySet().equals(Set.of("$eq"))) {
                    seed.put(key, condition.get("$eq"));
                } else if (!(value instanceof Document condition && condition.keySet().stream()
                    .anyMatch(k -> k.startsWith("$")))) {
                    seed.put(key, value);
                }
            }
        }
    }
}
