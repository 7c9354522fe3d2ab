// Reads a topic from the beginning with Kafka's own Java client (the kafka-clients jar of the broker's
// classpath) and prints one JSON line per record: partition, offset, timestamp, key, value and headers
// as hex (null stays null), so a test can compare what Kafka's own parser sees with what was sent.
// Run as a single-file program: java -cp '<libs>/*' ReadBack.java <bootstrap> <topic> <count> <timeoutMs>
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class ReadBack {
  public static void main(String[] args) {
    String bootstrap = args[0], topic = args[1];
    int count = Integer.parseInt(args[2]);
    long deadline = System.currentTimeMillis() + Long.parseLong(args[3]);
    Properties props = new Properties();
    props.put("bootstrap.servers", bootstrap);
    props.put("enable.auto.commit", "false");
    props.put("check.crcs", "true");
    props.put("key.deserializer", ByteArrayDeserializer.class.getName());
    props.put("value.deserializer", ByteArrayDeserializer.class.getName());
    HexFormat hex = HexFormat.of();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
      List<TopicPartition> parts = infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      int seen = 0;
      while (seen < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
          StringBuilder headers = new StringBuilder("[");
          for (Header h : r.headers()) {
            if (headers.length() > 1) headers.append(',');
            headers.append("[\"").append(hex.formatHex(h.key().getBytes(java.nio.charset.StandardCharsets.UTF_8)))
                .append("\",").append(h.value() == null ? "null" : "\"" + hex.formatHex(h.value()) + "\"").append(']');
          }
          headers.append(']');
          System.out.println("{\"partition\":" + r.partition() + ",\"offset\":" + r.offset()
              + ",\"timestamp\":" + r.timestamp()
              + ",\"key\":" + (r.key() == null ? "null" : "\"" + hex.formatHex(r.key()) + "\"")
              + ",\"value\":" + (r.value() == null ? "null" : "\"" + hex.formatHex(r.value()) + "\"")
              + ",\"headers\":" + headers + "}");
          seen++;
        }
      }
      System.out.flush();
      if (seen < count) {
        System.err.println("read " + seen + " of " + count + " records before the deadline");
        System.exit(2);
      }
    }
  }
}
