package relay.standin;

import java.util.ArrayList;
import java.util.List;

import de.bwaldvogel.mongo.bson.Document;

/** mongod's stage aliases that mongo-java-server's aggregation lacks, rewritten to the stages they stand for. */
final class StageAliases {

    private StageAliases() {
    }

    /** {@code $set} is {@code $addFields}; {@code $replaceWith: e} is {@code $replaceRoot: {newRoot: e}}. */
    static List<Document> resolve(List<Document> stages) {
        List<Document> resolved = new ArrayList<>(stages.size());
        for (Document stage : stages) {
            String name = stage.keySet().iterator().next();
            switch (name) {
                case "$set" -> resolved.add(new Document("$addFields", stage.get(name)));
                case "$replaceWith" -> resolved.add(new Document("$replaceRoot",
                    new Document("newRoot", stage.get(name))));
                default -> resolved.add(stage);
            }
        }
        return resolved;
    }
}
