package relay.standin;

import java.util.List;
import java.util.Set;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/** The parsed {@code $changeStream} stage, validated the way mongod validates it. */
record ChangeStreamOptions(String fullDocument, String fullDocumentBeforeChange, Position resumePoint,
                           boolean allChangesForCluster) {

    private static final Set<String> KNOWN = Set.of("fullDocument", "fullDocumentBeforeChange", "resumeAfter",
        "startAfter", "startAtOperationTime", "allChangesForCluster", "showExpandedEvents", "showSystemEvents",
        "showMigrationEvents", "allowToRunOnConfigDB", "showRawUpdateDescription");
    /** Options mongod accepts that change what a stream returns, and that the stand-in does not implement. */
    private static final Set<String> NOT_IMPLEMENTED = Set.of("showExpandedEvents", "showSystemEvents",
        "showMigrationEvents", "allowToRunOnConfigDB", "showRawUpdateDescription");
    private static final List<String> FULL_DOCUMENT = List.of("default", "updateLookup", "whenAvailable", "required");
    private static final List<String> BEFORE_CHANGE = List.of("off", "whenAvailable", "required");
    /** The stages mongod allows after $changeStream. */
    static final Set<String> ALLOWED_STAGES = Set.of("$match", "$project", "$addFields", "$set", "$unset",
        "$replaceRoot", "$replaceWith", "$redact");
    /** Splits events over the size limit into fragments; only as the last stage of a change stream pipeline. */
    static final String SPLIT_STAGE = "$changeStreamSplitLargeEvent";

    static ChangeStreamOptions parse(Document spec) {
        for (String key : spec.keySet()) {
            if (!KNOWN.contains(key)) {
                throw new MongoServerError(40415, "Location40415", "BSON field '$changeStream." + key + "' is an unknown field.");
            }
        }
        for (String option : NOT_IMPLEMENTED) {
            // Refused rather than ignored: a stream silently without the events or fields asked for would pass
            // tests that a real mongod fails.
            if (Boolean.TRUE.equals(spec.get(option))) {
                throw new MongoServerError(238, "NotImplemented", "$changeStream option '" + option
                    + ": true' is not implemented by the mongo-java-server stand-in (use a real mongod)");
            }
        }
        String fullDocument = choice(spec, "fullDocument", FULL_DOCUMENT);
        String beforeChange = choice(spec, "fullDocumentBeforeChange", BEFORE_CHANGE);
        long resumeOptions = Set.of("resumeAfter", "startAfter", "startAtOperationTime").stream()
            .filter(spec::containsKey).count();
        if (resumeOptions > 1) {
            throw new MongoServerError(40674, "Location40674",
                "Only one type of resume option is allowed, but multiple were found.");
        }
        Position resumePoint = null;
        if (spec.containsKey("resumeAfter")) {
            resumePoint = Position.fromToken(spec.get("resumeAfter"));
            if (resumePoint.invalidate()) {
                throw Position.invalidToken("Attempting to resume a change stream using 'resumeAfter' is not allowed "
                    + "from an invalidate notification.");
            }
        } else if (spec.containsKey("startAfter")) {
            resumePoint = Position.fromToken(spec.get("startAfter"));
        } else if (spec.get("startAtOperationTime") instanceof BsonTimestamp) {
            resumePoint = Position.at(((BsonTimestamp) spec.get("startAtOperationTime")).getValue());
        } else if (spec.containsKey("startAtOperationTime")) {
            throw new MongoServerError(14, "TypeMismatch", "'startAtOperationTime' must be a timestamp");
        }
        boolean cluster = Boolean.TRUE.equals(spec.get("allChangesForCluster"));
        return new ChangeStreamOptions(fullDocument, beforeChange, resumePoint, cluster);
    }

    private static String choice(Document spec, String field, List<String> allowed) {
        Object value = spec.getOrDefault(field, allowed.get(0));
        if (!(value instanceof String) || !allowed.contains(value)) {
            throw new MongoServerError(2, "BadValue", "'" + value + "' is not a valid value for " + field
                + "; expected one of " + allowed);
        }
        return (String) value;
    }
}
