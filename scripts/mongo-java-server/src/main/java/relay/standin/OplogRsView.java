package relay.standin;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;

/**
 * A read-only {@code local.oplog.rs} over the stand-in's change log, for what monitoring tools ask of it: the
 * oldest or newest entry ({@code find} sorted by {@code $natural}, usually with {@code limit: 1}). Entries carry
 * {@code ts}, {@code t}, {@code wall}, {@code op} and {@code ns} like a replica set's; filters are not supported
 * (a filtered find fails like an unsupported query rather than answering wrongly).
 */
final class OplogRsView {

    private OplogRsView() {
    }

    static boolean handles(String db, String command, Document query) {
        return db.equals("local") && command.equalsIgnoreCase("find") && "oplog.rs".equals(query.get(command));
    }

    static Document find(ChangeLog changeLog, Document query) {
        Object filter = query.get("filter");
        if (filter instanceof Document f && !f.isEmpty()) {
            throw new de.bwaldvogel.mongo.exception.MongoServerError(2, "BadValue",
                "the stand-in's local.oplog.rs answers only unfiltered finds sorted by $natural");
        }
        boolean newestFirst = query.get("sort") instanceof Document sort
            && sort.get("$natural") instanceof Number n && n.intValue() < 0;
        long limit = query.get("limit") instanceof Number n ? Math.abs(n.longValue()) : 0;
        long lastTs = changeLog.snapshot().lastTs();
        java.util.Collection<ChangeLog.Entry> all;
        if (lastTs == 0) {
            all = List.of();
        } else if (newestFirst && limit == 1) {
            ChangeLog.Entry newest = changeLog.at(lastTs); // the usual "newest entry" query: a lookup, not a copy
            all = newest == null ? List.of() : List.of(newest);
        } else if (newestFirst) {
            List<ChangeLog.Entry> copy = new ArrayList<>(changeLog.between(0L, lastTs));
            java.util.Collections.reverse(copy);
            all = copy;
        } else {
            all = changeLog.between(0L, lastTs);
        }
        List<Document> batch = new ArrayList<>();
        for (Iterator<ChangeLog.Entry> it = all.iterator(); it.hasNext() && (limit == 0 || batch.size() < limit); ) {
            batch.add(toOplogEntry(it.next()));
        }
        Document cursor = new Document("firstBatch", batch).append("id", 0L).append("ns", "local.oplog.rs");
        return new Document("cursor", cursor).append("ok", 1.0);
    }

    private static Document toOplogEntry(ChangeLog.Entry entry) {
        String op = switch (entry.op()) {
            case INSERT -> "i";
            case UPDATE, REPLACE -> "u";
            case DELETE -> "d";
            default -> "c";
        };
        String ns = entry.coll() == null ? entry.db() + ".$cmd" : entry.db() + "." + entry.coll();
        return new Document("ts", new BsonTimestamp(entry.ts())).append("t", 1L)
            .append("wall", entry.wall()).append("op", op).append("ns", ns);
    }
}
