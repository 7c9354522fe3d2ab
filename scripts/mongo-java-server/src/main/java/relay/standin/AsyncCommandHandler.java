package relay.standin;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.exception.MongoServerException;
import de.bwaldvogel.mongo.wire.message.ClientRequest;
import de.bwaldvogel.mongo.wire.message.MessageHeader;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import de.bwaldvogel.mongo.wire.message.MongoQuery;
import de.bwaldvogel.mongo.wire.message.MongoReply;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.group.ChannelGroup;

/**
 * Replaces mongo-java-server's MongoDatabaseHandler, which runs every command on a netty event-loop thread: a
 * change-stream getMore that waits up to maxTimeMS there would stall every other connection on that loop
 * (including the one whose insert would wake it). Commands run on a worker pool instead, still one at a time and
 * in order per connection. Error replies also carry errorLabels, which the driver's resume logic reads.
 */
final class AsyncCommandHandler extends SimpleChannelInboundHandler<ClientRequest> {

    private static final Logger log = LoggerFactory.getLogger(AsyncCommandHandler.class);
    private static final AtomicInteger RESPONSE_IDS = new AtomicInteger();

    private final StandInBackend backend;
    private final ChannelGroup channels;
    private final ExecutorService workers;
    /** The previous request of this connection (one handler per connection; touched only on its event loop). */
    private CompletableFuture<Void> previous = CompletableFuture.completedFuture(null);

    AsyncCommandHandler(StandInBackend backend, ChannelGroup channels, ExecutorService workers) {
        this.backend = backend;
        this.channels = channels;
        this.workers = workers;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        channels.add(ctx.channel());
        super.channelActive(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        channels.remove(ctx.channel());
        backend.handleClose(ctx.channel());
        super.channelInactive(ctx);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, ClientRequest request) {
        previous = previous.thenRunAsync(() -> ctx.channel().writeAndFlush(reply(request)), workers)
            .exceptionally(failure -> {
                log.warn("failed to answer {}", request, failure);
                ctx.close();
                return null;
            });
    }

    private Object reply(ClientRequest request) {
        MessageHeader header = new MessageHeader(RESPONSE_IDS.incrementAndGet(), request.getHeader().getRequestID());
        if (request instanceof MongoQuery query) {
            // Legacy OP_QUERY: the driver's first handshake (isMaster) before it knows the server speaks OP_MSG.
            return new MongoReply(header, List.of(run(query.getDatabaseName(), commandOf(query.getQuery()), query)), 0);
        }
        MongoMessage message = (MongoMessage) request;
        Document response = run(message.getDatabaseName(), commandOf(message.getDocument()), message);
        backend.addClusterTime(response);
        return new MongoMessage(message.getChannel(), header, response);
    }

    private Document run(String db, String command, ClientRequest request) {
        try {
            if (request instanceof MongoQuery query) {
                Document body = query.getQuery().get("$query") instanceof Document inner ? inner : query.getQuery();
                return backend.handleCommand(query.getChannel(), db, commandOf(body), body);
            }
            return backend.handleMessage((MongoMessage) request);
        } catch (MongoServerException e) {
            log.debug("{} failed: {}", command, e.getMessageWithoutErrorCode());
            return error(command, e);
        } catch (RuntimeException e) {
            log.error("{} failed unexpectedly", command, e);
            return error(command, new MongoServerException("Unknown error: " + e.getMessage(), e));
        }
    }

    private static String commandOf(Document body) {
        return body.isEmpty() ? "" : body.keySet().iterator().next();
    }

    private static Document error(String command, MongoServerException e) {
        Document error = new Document("ok", 0.0).append("errmsg", e.getMessageWithoutErrorCode());
        if (e instanceof MongoServerError serverError) {
            error.append("code", serverError.getCode()).append("codeName", serverError.getCodeName());
            // mongod labels a lost cursor as resumable for change streams (the driver then reopens the stream).
            if (serverError.getCode() == 43 && command.equalsIgnoreCase("getMore")) {
                error.append("errorLabels", List.of("ResumableChangeStreamError"));
            }
            // mongod labels an aborted transaction as transient: the driver's withTransaction retries it.
            if (serverError.getCode() == 251) {
                error.append("errorLabels", List.of("TransientTransactionError"));
            }
        }
        return error;
    }
}
