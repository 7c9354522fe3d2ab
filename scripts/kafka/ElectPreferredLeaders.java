/*
 * Elects the preferred leader (the first replica) of every partition of the given topics, as
 * kafka-leader-election.sh --election-type preferred does. kafkajs has no ElectLeaders API; this runs
 * from the broker's own jars as a single-file Java program (no build):
 *
 *   java -cp '.cache/kafka-<v>/libs/*' scripts/kafka/ElectPreferredLeaders.java <bootstrap> <topic>...
 *
 * Prints one line per partition: "<topic>-<partition> elected" or "<topic>-<partition> <reason>"
 * (ELECTION_NOT_NEEDED when the preferred replica already leads). Exit code 1 on any other error.
 */
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ElectionNotNeededException;

public class ElectPreferredLeaders {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: ElectPreferredLeaders <bootstrap> <topic>...");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    try (Admin admin = Admin.create(props)) {
      Map<String, TopicDescription> topics =
          admin.describeTopics(List.of(args).subList(1, args.length)).allTopicNames().get();
      Set<TopicPartition> partitions = new HashSet<>();
      topics.forEach((name, d) -> d.partitions().forEach(p -> partitions.add(new TopicPartition(name, p.partition()))));
      Map<TopicPartition, Optional<Throwable>> result =
          admin.electLeaders(ElectionType.PREFERRED, partitions).partitions().get();
      boolean failed = false;
      for (Map.Entry<TopicPartition, Optional<Throwable>> e : result.entrySet()) {
        Optional<Throwable> error = e.getValue();
        if (error.isEmpty()) System.out.println(e.getKey() + " elected");
        else if (error.get() instanceof ElectionNotNeededException) System.out.println(e.getKey() + " ELECTION_NOT_NEEDED");
        else {
          failed = true;
          System.out.println(e.getKey() + " " + error.get());
        }
      }
      System.exit(failed ? 1 : 0);
    }
  }
}
