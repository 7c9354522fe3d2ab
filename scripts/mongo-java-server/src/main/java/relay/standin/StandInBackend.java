package relay.standin;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;
import de.bwaldvogel.mongo.wire.BsonConstants;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import io.netty.channel.Channel;

/**
 * mongo-java-server's memory backend, presented as a one-member replica set speaking wire version 21, with
 * change streams implemented on {@link ChangeLog} (collection, database and deployment level, resumable,
 * with postBatchResumeToken and awaitData getMores). Commands it does not touch go to mongo-java-server.
 */
final class StandInBackend extends MemoryBackend {

    private static final Logger log = LoggerFactory.getLogger(StandInBackend.class);

    /** MongoDB 7.0: every command the relay and its tests use behaves as documented for it (see README). */
    static final List<Integer> VERSION = List.of(7, 0, 0);
    static final int WIRE_VERSION = 21;
    private static final long DEFAULT_AWAIT_MS = 1000;
    private static final long CURSOR_TIMEOUT_NANOS = TimeUnit.MINUTES.toNanos(10);
    private static final Set<String> ADMIN_COLLECTION_COMMANDS = Set.of("insert", "update", "delete", "find",
        "findandmodify", "aggregate", "count", "distinct", "create", "drop", "createindexes", "dropindexes",
        "listcollections", "listindexes", "collmod");

    private final ChangeLog changeLog;
    /** Null unless started with --transactions. */
    private final Transactions transactions;
    private final String replicaSetName;
    private final String mongoJavaServerVersion;
    private final Map<Long, ChangeStreamCursor> streams = new ConcurrentHashMap<>();
    private final ScheduledExecutorService housekeeping = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "stand-in-housekeeping");
        thread.setDaemon(true);
        return thread;
    });
    private final ObjectId electionId = new ObjectId("7fffffff0000000000000001");
    private volatile String me = "127.0.0.1:27017";

    StandInBackend(Settings settings) {
        this.changeLog = new ChangeLog(settings.oplogMaxEntries(), settings.oplogSizeMb() * 1024 * 1024);
        this.transactions = settings.transactions()
            ? new Transactions(changeLog, settings.transactionLifetimeSeconds()) : null;
        this.replicaSetName = settings.replicaSet();
        this.mongoJavaServerVersion = settings.mongoJavaServerVersion();
        long ttl = settings.ttlMonitorSeconds();
        housekeeping.scheduleWithFixedDelay(this::expireTtl, ttl, ttl, TimeUnit.SECONDS);
        housekeeping.scheduleWithFixedDelay(this::reapIdleStreams, 1, 1, TimeUnit.MINUTES);
        long noopNanos = TimeUnit.SECONDS.toNanos(settings.noopIntervalSeconds());
        housekeeping.scheduleWithFixedDelay(() -> changeLog.writeNoopIfIdle(noopNanos), 1, 1, TimeUnit.SECONDS);
        if (transactions != null) {
            housekeeping.scheduleWithFixedDelay(this::abortExpiredTransactions, 1, 1, TimeUnit.SECONDS);
        }
    }

    /** The launcher's options (see Main). */
    record Settings(long oplogMaxEntries, long oplogSizeMb, String replicaSet, String mongoJavaServerVersion,
                    long ttlMonitorSeconds, long noopIntervalSeconds, boolean transactions, long transactionLifetimeSeconds) {
    }

    void setAddress(String hostAndPort) {
        this.me = hostAndPort;
    }

    ChangeLog changeLog() {
        return changeLog;
    }

    @Override
    public MemoryDatabase openOrCreateDatabase(String databaseName) {
        return new StandInDatabase(databaseName, getCursorRegistry(), changeLog);
    }

    @Override
    protected Oplog createOplog() {
        return changeLog.asOplog();
    }

    @Override
    public Document handleCommand(Channel channel, String db, String command, Document query) {
        switch (command.toLowerCase()) {
            case "hello", "ismaster" -> {
                return hello(command);
            }
            case "buildinfo" -> {
                return buildInfo();
            }
            case "aggregate" -> {
                Document stream = changeStreamStage(query);
                if (stream != null) {
                    return openChangeStream(db, query, stream);
                }
            }
            case "getmore" -> {
                ChangeStreamCursor cursor = streams.get(((Number) query.get(command)).longValue());
                if (cursor != null) {
                    return getMore(cursor, query);
                }
            }
            case "killcursors" -> {
                return killCursors(query);
            }
            case "committransaction" -> {
                return requireTransactions().commit(query);
            }
            case "aborttransaction" -> {
                return requireTransactions().abort(query);
            }
            case "endsessions", "killsessions" -> {
                if (transactions != null && query.get(command) instanceof List<?> sessions) {
                    transactions.endSessions(sessions);
                }
            }
            case "replsetgetstatus" -> {
                return replSetStatus();
            }
            case "find" -> {
                if (OplogRsView.handles(db, command, query)) {
                    return OplogRsView.find(changeLog, query);
                }
            }
            default -> {
            }
        }
        if (query.containsKey("autocommit") || query.containsKey("startTransaction")) {
            return requireTransactions().run(query, () -> dispatch(channel, db, command, query));
        }
        return dispatch(channel, db, command, query);
    }

    private Document dispatch(Channel channel, String db, String command, Document query) {
        if (db.equals("admin") && ADMIN_COLLECTION_COMMANDS.contains(command.toLowerCase())
            && !"$cmd.sys.inprog".equals(query.get(command))) {
            // mongo-java-server answers only server commands on admin; mongod also keeps collections there.
            return resolveDatabase(db).handleCommand(channel, command, query, this::resolveDatabase, oplog);
        }
        Document response = super.handleCommand(channel, db, command, query);
        if (db.equals("admin") && command.equalsIgnoreCase("renameCollection")) {
            recordRename(query.get(command).toString(), query.get("to").toString());
        }
        return response;
    }

    @Override
    public void dropDatabase(String databaseName) {
        boolean existed = listDatabaseNames().contains(databaseName);
        super.dropDatabase(databaseName); // drops each collection first: a drop event each, as on mongod
        if (existed && !databaseName.equals("local")) {
            changeLog.append(new ChangeLog.Change(ChangeLog.Op.DROP_DATABASE, databaseName, null, null, null, null, null,
                null, null, false));
        }
    }

    private void recordRename(String from, String to) {
        if (from.equals(to)) {
            return;
        }
        changeLog.append(new ChangeLog.Change(ChangeLog.Op.RENAME, Utils.getDatabaseNameFromFullName(from),
            Utils.getCollectionNameFromFullName(from), null, null, null, null, Utils.getDatabaseNameFromFullName(to),
            Utils.getCollectionNameFromFullName(to), false));
    }

    private Transactions requireTransactions() {
        if (transactions == null) {
            // Not 20 (IllegalOperation): the driver rewrites code 20 on writes into a misleading retryWrites hint.
            throw new MongoServerError(238, "NotImplemented", "Transactions are not supported by the "
                + "mongo-java-server stand-in unless started with --transactions (use a real mongod replica set)");
        }
        return transactions;
    }

    private void abortExpiredTransactions() {
        try {
            transactions.abortExpired();
        } catch (RuntimeException e) {
            log.warn("aborting expired transactions failed", e);
        }
    }

    private Document hello(String command) {
        BsonTimestamp now = new BsonTimestamp(changeLog.clusterTime());
        Document opTime = new Document("ts", now).append("t", 1L);
        return new Document("helloOk", true)
            .append(command.equals("hello") ? "isWritablePrimary" : "ismaster", true)
            .append("secondary", false)
            .append("setName", replicaSetName)
            .append("setVersion", 1)
            .append("hosts", List.of(me))
            .append("primary", me)
            .append("me", me)
            .append("electionId", electionId)
            .append("lastWrite", new Document("opTime", opTime).append("lastWriteDate", Instant.now())
                .append("majorityOpTime", opTime).append("majorityWriteDate", Instant.now()))
            .append("maxBsonObjectSize", BsonConstants.MAX_BSON_OBJECT_SIZE)
            .append("maxMessageSizeBytes", MongoWireProtocolHandler.MAX_MESSAGE_SIZE_BYTES)
            .append("maxWriteBatchSize", MongoWireProtocolHandler.MAX_WRITE_BATCH_SIZE)
            .append("localTime", Instant.now())
            .append("logicalSessionTimeoutMinutes", 30)
            .append("minWireVersion", 0)
            .append("maxWireVersion", WIRE_VERSION)
            .append("readOnly", false)
            .append("ok", 1.0);
    }

    private Document replSetStatus() {
        Document member = new Document("_id", 0).append("name", me).append("health", 1.0).append("state", 1)
            .append("stateStr", "PRIMARY").append("self", true);
        return new Document("set", replicaSetName).append("date", Instant.now()).append("myState", 1)
            .append("members", List.of(member)).append("ok", 1.0);
    }

    private Document buildInfo() {
        return new Document("version", Utils.join(VERSION, "."))
            .append("versionArray", List.of(VERSION.get(0), VERSION.get(1), VERSION.get(2), 0))
            .append("gitVersion", "mongo-java-server-" + mongoJavaServerVersion)
            .append("mongoJavaServer", mongoJavaServerVersion)
            .append("storageEngines", List.of("memory"))
            .append("bits", 64)
            .append("maxBsonObjectSize", BsonConstants.MAX_BSON_OBJECT_SIZE)
            .append("ok", 1.0);
    }

    /** Adds what a replica set member puts on every reply, so the driver can gossip cluster time. */
    void addClusterTime(Document response) {
        BsonTimestamp now = new BsonTimestamp(changeLog.clusterTime());
        response.put("operationTime", now);
        response.put("$clusterTime", new Document("clusterTime", now)
            .append("signature", new Document("hash", new BinData(new byte[20])).append("keyId", 0L)));
    }

    private static Document changeStreamStage(Document query) {
        Object pipeline = query.get("pipeline");
        if (pipeline instanceof List && !((List<?>) pipeline).isEmpty()
            && ((List<?>) pipeline).get(0) instanceof Document) {
            Object stage = ((Document) ((List<?>) pipeline).get(0)).get("$changeStream");
            return stage instanceof Document ? (Document) stage : null;
        }
        return null;
    }

    private Document openChangeStream(String db, Document query, Document stage) {
        ChangeStreamOptions options = ChangeStreamOptions.parse(stage);
        Object target = query.get("aggregate");
        String coll = target instanceof String ? (String) target : null;
        if (coll == null && !(target instanceof Number && ((Number) target).intValue() == 1)) {
            throw new MongoServerError(14, "TypeMismatch", "'aggregate' must be a collection name or 1");
        }
        String streamDb = db;
        if (options.allChangesForCluster()) {
            if (!db.equals("admin") || coll != null) {
                throw new MongoServerError(73, "InvalidNamespace",
                    "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name");
            }
            streamDb = null;
        } else if (db.equals("admin") || db.equals("config") || db.equals("local")) {
            throw new MongoServerError(73, "InvalidNamespace",
                "$changeStream may not be opened on the internal " + db + " database");
        }
        if (!(query.get("cursor") instanceof Document)) {
            throw new MongoServerError(9, "FailedToParse",
                "The 'cursor' option is required, except for aggregate with the explain argument");
        }
        List<Document> userStages = new ArrayList<>();
        List<?> pipeline = (List<?>) query.get("pipeline");
        boolean split = false;
        for (int i = 1; i < pipeline.size(); i++) {
            Document userStage = (Document) pipeline.get(i);
            String name = userStage.keySet().iterator().next();
            if (name.equals(ChangeStreamOptions.SPLIT_STAGE)) {
                if (!(userStage.get(name) instanceof Document spec) || !spec.isEmpty()) {
                    throw new MongoServerError(7182800, "Location7182800",
                        "$changeStreamSplitLargeEvent spec should be an empty object");
                }
                if (split || i != pipeline.size() - 1) {
                    throw new MongoServerError(7182802, "Location7182802",
                        "$changeStreamSplitLargeEvent must be the last stage in the pipeline");
                }
                split = true;
                continue;
            }
            if (!ChangeStreamOptions.ALLOWED_STAGES.contains(name)) {
                throw new MongoServerError(20, "IllegalOperation", name + " is not permitted in a $changeStream pipeline");
            }
            userStages.add(userStage);
        }
        // The allowed stages never read another collection, so no database is resolved (that would create it).
        Aggregation aggregation = Aggregation.fromPipeline(StageAliases.resolve(userStages), this::resolveDatabase,
            null, null, oplog);

        Position start = options.resumePoint();
        if (start != null) {
            changeLog.checkResumable(start, false);
            changeLog.checkTokenExists(start);
            if (start.fragment() > 0 && !split) {
                throw new MongoServerError(280, "ChangeStreamFatalError", "To resume from a split event, the "
                    + "$changeStream pipeline must end with the same $changeStreamSplitLargeEvent stage");
            }
        } else {
            // Like mongod: a new stream starts just after the newest oplog entry.
            start = Position.at(changeLog.snapshot().lastTs() + 1);
        }
        long id = getCursorRegistry().generateCursorId();
        ChangeStreamCursor cursor = new ChangeStreamCursor(id, streamDb, coll, options, aggregation, split, start,
            this);
        Document cursorDocument = (Document) query.get("cursor");
        int batchSize = ((Number) cursorDocument.getOrDefault("batchSize", 0)).intValue();
        Document response = cursor.firstBatch(batchSize);
        if (!cursor.isClosed()) {
            streams.put(id, cursor);
        }
        return response;
    }

    private Document getMore(ChangeStreamCursor cursor, Document query) {
        int batchSize = ((Number) query.getOrDefault("batchSize", 0)).intValue();
        long maxTimeMS = ((Number) query.getOrDefault("maxTimeMS", DEFAULT_AWAIT_MS)).longValue();
        try {
            Document response = cursor.getMore(batchSize, maxTimeMS);
            if (cursor.isClosed()) {
                streams.remove(cursor.id);
            }
            return response;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MongoServerError(11601, "Interrupted", "getMore was interrupted");
        } catch (MongoServerError e) {
            streams.remove(cursor.id); // mongod kills a cursor whose getMore failed
            throw e;
        }
    }

    private Document killCursors(Document query) {
        List<Long> killed = new ArrayList<>();
        List<Long> notFound = new ArrayList<>();
        for (Object idObject : (List<?>) query.get("cursors")) {
            long id = ((Number) idObject).longValue();
            if (streams.remove(id) != null || getCursorRegistry().remove(id)) {
                killed.add(id);
            } else {
                notFound.add(id);
            }
        }
        return new Document("cursorsKilled", killed).append("cursorsNotFound", notFound)
            .append("cursorsAlive", List.of()).append("cursorsUnknown", List.of()).append("ok", 1.0);
    }

    /** updateLookup: the document as it is now, or null (without creating the database/collection). */
    Document lookup(String db, String coll, Object id) {
        if (!listDatabaseNames().contains(db)) {
            return null;
        }
        MongoCollection<?> collection = resolveDatabase(db).resolveCollection(coll, false);
        if (collection == null) {
            return null;
        }
        for (Document document : collection.handleQuery(new Document("_id", id))) {
            return document.cloneDeeply();
        }
        return null;
    }

    private void expireTtl() {
        try {
            Instant now = Instant.now();
            for (String name : new ArrayList<>(listDatabaseNames())) {
                ((StandInDatabase) resolveDatabase(name)).expireTtl(now, oplog);
            }
        } catch (RuntimeException e) {
            log.warn("TTL pass failed", e);
        }
    }

    private void reapIdleStreams() {
        // Like mongod's cursorTimeoutMillis: a client that died leaves no cursor behind forever.
        streams.values().removeIf(cursor -> cursor.idleNanos() > CURSOR_TIMEOUT_NANOS);
    }

    @Override
    public void close() {
        housekeeping.shutdownNow();
        super.close();
    }
}
