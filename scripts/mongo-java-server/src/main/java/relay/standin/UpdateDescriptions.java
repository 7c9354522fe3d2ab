package relay.standin;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import de.bwaldvogel.mongo.bson.Document;

/**
 * Builds an update event's {@code updateDescription} {updatedFields, removedFields, truncatedArrays} from the
 * document before and after the update. mongod derives it from the paths the update operators touched, so this
 * does the same: for each path named in the update spec it reports the new value, a removal, array appends as
 * {@code "arr.<index>"} or a shrink as a truncatedArrays entry.
 */
final class UpdateDescriptions {

    private static final Object MISSING = new Object();

    private UpdateDescriptions() {
    }

    static boolean isReplacement(Object updateSpec) {
        return updateSpec instanceof Document
            && ((Document) updateSpec).keySet().stream().noneMatch(key -> key.startsWith("$"));
    }

    static Document describe(Document before, Document after, Object updateSpec) {
        Document updated = new Document();
        List<String> removed = new ArrayList<>();
        List<Document> truncated = new ArrayList<>();
        for (String path : touchedPaths(before, after, updateSpec)) {
            Object oldValue = valueAt(before, path);
            Object newValue = valueAt(after, path);
            if (newValue == MISSING) {
                if (oldValue != MISSING) {
                    removed.add(path);
                }
            } else if (oldValue == MISSING) {
                String created = firstMissingAncestor(before, path);
                updated.put(created, copy(valueAt(after, created)));
            } else if (!Objects.equals(oldValue, newValue)) {
                if (oldValue instanceof List && newValue instanceof List) {
                    describeArray(path, (List<?>) oldValue, (List<?>) newValue, updated, truncated);
                } else {
                    updated.put(path, copy(newValue));
                }
            }
        }
        return new Document("updatedFields", updated)
            .append("removedFields", removed)
            .append("truncatedArrays", truncated);
    }

    private static void describeArray(String path, List<?> before, List<?> after, Document updated,
                                      List<Document> truncated) {
        int common = Math.min(before.size(), after.size());
        if (!before.subList(0, common).equals(after.subList(0, common))) {
            updated.put(path, copy(after));
            return;
        }
        for (int i = common; i < after.size(); i++) {
            updated.put(path + "." + i, copy(after.get(i)));
        }
        if (after.size() < before.size()) {
            truncated.add(new Document("field", path).append("newSize", after.size()));
        }
    }

    /** The paths named by the update operators, cut at positional parts ($, $[], $[id]) and numeric array indexes. */
    private static Set<String> touchedPaths(Document before, Document after, Object updateSpec) {
        Set<String> paths = new LinkedHashSet<>();
        if (!(updateSpec instanceof Document)) {
            // Not a modifier document (e.g. an update pipeline): fall back to a top-level comparison.
            paths.addAll(before.keySet());
            paths.addAll(after.keySet());
            return paths;
        }
        for (Map.Entry<String, Object> operator : ((Document) updateSpec).entrySet()) {
            if (!(operator.getValue() instanceof Document) || operator.getKey().equals("$setOnInsert")) {
                continue;
            }
            for (Map.Entry<String, Object> field : ((Document) operator.getValue()).entrySet()) {
                paths.add(trimPositional(field.getKey()));
                if (operator.getKey().equals("$rename") && field.getValue() instanceof String) {
                    paths.add((String) field.getValue());
                }
            }
        }
        paths.remove("_id");
        return paths;
    }

    private static String trimPositional(String path) {
        StringBuilder kept = new StringBuilder();
        for (String part : path.split("\\.")) {
            if (part.startsWith("$")) {
                break;
            }
            kept.append(kept.length() == 0 ? "" : ".").append(part);
        }
        return kept.toString();
    }

    private static String firstMissingAncestor(Document before, String path) {
        String[] parts = path.split("\\.");
        StringBuilder prefix = new StringBuilder();
        for (String part : parts) {
            prefix.append(prefix.length() == 0 ? "" : ".").append(part);
            if (valueAt(before, prefix.toString()) == MISSING) {
                return prefix.toString();
            }
        }
        return path;
    }

    private static Object valueAt(Document document, String path) {
        Object current = document;
        for (String part : path.split("\\.")) {
            if (current instanceof Document && ((Document) current).containsKey(part)) {
                current = ((Document) current).get(part);
            } else if (current instanceof List && part.matches("\\d+") && Integer.parseInt(part) < ((List<?>) current).size()) {
                current = ((List<?>) current).get(Integer.parseInt(part));
            } else {
                return MISSING;
            }
        }
        return current;
    }

    private static Object copy(Object value) {
        if (value instanceof Document) {
            return ((Document) value).cloneDeeply();
        }
        if (value instanceof List) {
            List<Object> list = new ArrayList<>();
            for (Object element : (List<?>) value) {
                list.add(copy(element));
            }
            return list;
        }
        return value;
    }
}
