package relay.standin;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import de.bwaldvogel.mongo.wire.MongoExceptionHandler;
import de.bwaldvogel.mongo.wire.MongoWireMessageEncoder;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import de.bwaldvogel.mongo.wire.MongoWireReplyEncoder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.GlobalEventExecutor;

/**
 * Starts the stand-in. Options (each also readable as a system property -Dstandin.NAME):
 * <pre>
 *   --port N                 port on 127.0.0.1 (0 = any free port; default 0)
 *   --oplog-max-entries N    change log cap; older entries are dropped and resuming before them fails with 286
 *                            ChangeStreamHistoryLost (default 1000000)
 *   --oplog-size-mb N        change log cap in MB of BSON, like mongod's --oplogSize (default 64: the log lives in the
 *                            JVM heap, so it is smaller than mongod's 990 MB minimum); the first cap reached applies
 *   --ttl-monitor-seconds N  TTL index pass interval (default 60, like mongod's ttlMonitorSleepSecs)
 *   --replset NAME           replica set name reported by hello (default rs0)
 *   --noop-interval-seconds N  while idle, write a no-op oplog entry every N seconds (mongod's
 *                            periodicNoopIntervalSecs, default 10): the only thing that moves an idle stream's token
 *   --transactions           accept multi-document transactions (change events only: no isolation, see README)
 *   --transaction-lifetime-seconds N  abort transactions open longer than this (transactionLifetimeLimitSeconds,
 *                            default 60)
 *   --port-file PATH         write the bound port there once ready
 *   --exit-with-stdin        exit when standard input closes (the starting process died or let go)
 * </pre>
 * Prints one line starting with "mongo-java-server stand-in ready" once it accepts connections.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = parse(args);
        int port = Integer.parseInt(option(options, "port", "0"));
        long oplogMaxEntries = Long.parseLong(option(options, "oplog-max-entries", "1000000"));
        long oplogSizeMb = Long.parseLong(option(options, "oplog-size-mb", "64"));
        long ttlSeconds = Long.parseLong(option(options, "ttl-monitor-seconds", "60"));
        String replicaSet = option(options, "replset", "rs0");
        String library = libraryVersion();

        long noopSeconds = Long.parseLong(option(options, "noop-interval-seconds", "10"));
        boolean transactions = Boolean.parseBoolean(option(options, "transactions", "false"));
        long transactionLifetime = Long.parseLong(option(options, "transaction-lifetime-seconds", "60"));
        StandInBackend backend = new StandInBackend(new StandInBackend.Settings(oplogMaxEntries, oplogSizeMb,
            replicaSet, library, ttlSeconds, noopSeconds, transactions, transactionLifetime));
        backend.enableOplog(); // installs ChangeLog.asOplog() through the protected createOplog() hook

        EventLoopGroup boss = new NioEventLoopGroup(1);
        EventLoopGroup io = new NioEventLoopGroup(2);
        AtomicInteger workerIds = new AtomicInteger();
        ExecutorService workers = Executors.newCachedThreadPool(runnable -> {
            Thread thread = new Thread(runnable, "stand-in-command-" + workerIds.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
        ChannelGroup channels = new DefaultChannelGroup("stand-in-clients", GlobalEventExecutor.INSTANCE);
        Channel server = new ServerBootstrap()
            .group(boss, io)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 128)
            .childOption(ChannelOption.TCP_NODELAY, Boolean.TRUE)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel channel) {
                    // mongo-java-server's own codec; only the command dispatcher is ours (see AsyncCommandHandler).
                    channel.pipeline().addLast(new MongoWireReplyEncoder());
                    channel.pipeline().addLast(new MongoWireMessageEncoder());
                    channel.pipeline().addLast(new MongoWireProtocolHandler());
                    channel.pipeline().addLast(new AsyncCommandHandler(backend, channels, workers));
                    channel.pipeline().addLast(new MongoExceptionHandler());
                }
            })
            .bind(new InetSocketAddress("127.0.0.1", port)).syncUninterruptibly().channel();
        int boundPort = ((InetSocketAddress) server.localAddress()).getPort();
        backend.setAddress("127.0.0.1:" + boundPort);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close().syncUninterruptibly();
            channels.close().syncUninterruptibly();
            boss.shutdownGracefully();
            io.shutdownGracefully();
            backend.close();
        }, "stand-in-shutdown"));

        if (options.containsKey("port-file")) {
            Path file = Path.of(options.get("port-file"));
            Path partial = file.resolveSibling(file.getFileName() + ".tmp");
            Files.writeString(partial, Integer.toString(boundPort), StandardCharsets.UTF_8);
            Files.move(partial, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        System.out.printf("mongo-java-server stand-in ready on mongodb://127.0.0.1:%d/ (mongo-java-server %s, "
                + "reports MongoDB %s / wire %d, replica set %s, oplog cap %d entries or %d MB, transactions %s, pid %d)%n",
            boundPort, library, "7.0.0", StandInBackend.WIRE_VERSION, replicaSet, oplogMaxEntries, oplogSizeMb,
            transactions ? "on (change events only, no isolation)" : "off", ProcessHandle.current().pid());
        System.out.flush();

        if (options.containsKey("exit-with-stdin")) {
            // The starting process keeps our stdin open; EOF means it is gone, so we must not outlive it.
            while (System.in.read() >= 0) {
                continue;
            }
            System.exit(0);
        }
        server.closeFuture().syncUninterruptibly();
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument: " + args[i]);
            }
            String name = args[i].substring(2);
            boolean flag = name.equals("exit-with-stdin") || name.equals("transactions");
            if (!flag && i + 1 >= args.length) {
                throw new IllegalArgumentException("--" + name + " needs a value");
            }
            options.put(name, flag ? "true" : args[++i]);
        }
        return options;
    }

    private static String option(Map<String, String> options, String name, String fallback) {
        return options.getOrDefault(name, System.getProperty("standin." + name, fallback));
    }

    private static String libraryVersion() throws IOException {
        Properties properties = new Properties();
        try (InputStream in = Main.class.getResourceAsStream("/standin.properties")) {
            if (in != null) {
                properties.load(in);
            }
        }
        return properties.getProperty("mongoJavaServerVersion", "unknown");
    }
}
