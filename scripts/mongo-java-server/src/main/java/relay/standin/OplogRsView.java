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
        java.util.Collection<ChangeLog.Group> all;
        if (lastTs == 0) {
            all = List.of();
        } else if (newestFirst && limit == 1) {
            // The usual "newest entry" query: a seek to the last entry, not a copy of the log.
            all = changeLog.between(lastTs, lastTs);
        } else if (newestFirst) {
            List<ChangeLog.Group> copy = new ArrayList<>(changeLog.between(0L, lastTs));
            java.util.Collections.reverse(copy);
            all = copy;
        } else {
            all = changeLog.between(0L, lastTs);
        }
        List<Document> batch = new ArrayList<>();
        for (Iterator<ChangeLog.Group> it = all.iterator(); it.hasNext() && (limit == 0 || batch.size() < limit); ) {
            batch.add(toOplogEntry(it.next()));
        }
        Document cursor = new Document("firstBatch", batch).append("id", 0L).append("ns", "local.oplog.rs");
        return new Document("cursor", cursor).append("ok", 1.0);
    }

    /**
     * One oplog entry per group, as mongod writes them: a no-op ("n") for the periodic writer, one CRUD entry for a
     * single change, and one applyOps command entry ("c" on admin.$cmd) for a transaction or a batched write.
     */
    private static Document toOplogEntry(ChangeLog.Group group) {
        List<ChangeLog.Entry> entries = group.entries();
        java.util.Date wall = entries.isEmpty()
            ? new java.util.Date((group.ts() >>> 32) * 1000L)
            : java.util.Date.from(entries.get(0).wall());
        String op;
        String ns;
        if (entries.isEmpty()) {
            op = "n";
            ns = "";
        } else if (entries.size() > 1) {
            op = "c";
            ns = "admin.$cmd";
        } else {
            ChangeLog.Entry entry = entries.get(0);
            op = switch (entry.op()) {
                case INSERT -> "i";
                case UPDATE, REPLACE -> "u";
                case DELETE -> "d";
                default -> "c";
            };
            ns = entry.coll() == null ? entry.db() + ".$cmd" : entry.db() + "." + entry.coll();
        }
        return new Document("ts", new BsonTimestamp(group.ts())).append("t", 1L)
            .append("wall", wall).append("op", op).append("ns", ns);
    }
}
